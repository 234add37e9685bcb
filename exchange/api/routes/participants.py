"""Participants: created by an admin (the key is shown once); anyone reads itself."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from exchange.commands import CancelAllOrders, CreateParticipant
from exchange.participants import Participant, Role, new_api_key, secret_digest
from matching import Side

from ..bodies import StrictJsonRoute
from ..deps import CurrentParticipant, RuntimeDep, requires
from ..schemas import (
    OrderPublic,
    ParticipantCreate,
    ParticipantCreated,
    ParticipantPublic,
    error_responses,
)
from ..views import order_view, participant_view

router = APIRouter(prefix="/participants", tags=["participants"], route_class=StrictJsonRoute)
Admin = Annotated[Participant, Depends(requires(Role.ADMIN))]


@router.post("", status_code=201, response_model=ParticipantCreated,
             responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503))
async def create_participant(
    body: ParticipantCreate, admin: Admin, runtime: RuntimeDep
) -> ParticipantCreated:
    """Create a participant and return its API key, which is never shown again."""
    key = new_api_key()
    outcome = await runtime.execute(CreateParticipant(
        admin.participant_id, body.participant_id, body.name, [str(r) for r in body.roles],
        key.key_id, secret_digest(key.secret),
    ))  # fmt: skip
    view = participant_view(outcome.result)
    return ParticipantCreated(**view.model_dump(), api_key=str(key))


@router.get("/me", response_model=ParticipantPublic, responses=error_responses(401, 429))
async def read_me(me: CurrentParticipant) -> ParticipantPublic:
    return participant_view(me)


@router.delete("/{participant_id}/orders", response_model=list[OrderPublic],
               responses=error_responses(401, 403, 404, 422, 429, 503))
async def kill_switch(
    participant_id: Annotated[str, Path(max_length=32, examples=["mm-alpha"])],
    admin: Admin,
    runtime: RuntimeDep,
    symbol: Annotated[str | None, Query(max_length=32, description="Only this instrument")] = None,
    side: Annotated[Side | None, Query(description="Only buys or only sells")] = None,
) -> list[OrderPublic]:
    """The kill switch: cancel all the participant's open orders (on ``symbol``, of
    ``side``, when given) as one command, journalled as the admin's. It does not stop the
    participant from sending more."""
    outcome = await runtime.execute(
        CancelAllOrders(admin.participant_id, participant_id, symbol, side)
    )
    return [order_view(record) for record in outcome.result]
