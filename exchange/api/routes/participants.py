"""Participants: created by an admin (the key is shown once); anyone reads itself."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from exchange.commands import CreateParticipant
from exchange.participants import Participant, Role, new_api_key, secret_digest

from ..bodies import StrictJsonRoute
from ..deps import CurrentParticipant, RuntimeDep, requires
from ..schemas import ParticipantCreate, ParticipantCreated, ParticipantPublic, error_responses
from ..views import participant_view

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
