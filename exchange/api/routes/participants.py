"""Participants: created by an admin (the key is shown once); anyone reads itself.

Operators (admins) list them, disable and enable them, rotate and revoke their API keys,
each a journalled command (``exchange/participants.py`` says what each does). Disabling or
enabling a participant already in that state answers its state and journals nothing, so a
retry is safe; a rotation retried issues another key, and the key whose answer was lost,
which nobody saw, stops working.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from exchange.commands import (
    CancelAllOrders,
    CreateParticipant,
    DisableParticipant,
    EnableParticipant,
    RevokeApiKey,
    RotateApiKey,
)
from exchange.participants import Participant, Role, new_api_key, secret_digest
from matching import Side

from ..bodies import StrictJsonRoute
from ..deps import CurrentParticipant, RuntimeDep, requires
from ..schemas import (
    ApiKeyIssued,
    OrderPublic,
    ParticipantAccount,
    ParticipantCreate,
    ParticipantCreated,
    ParticipantDisabled,
    ParticipantPublic,
    ParticipantStatusChange,
    error_responses,
)
from ..views import order_view, participant_account_view, participant_view

router = APIRouter(prefix="/participants", tags=["participants"], route_class=StrictJsonRoute)
Admin = Annotated[Participant, Depends(requires(Role.ADMIN))]
ParticipantId = Annotated[str, Path(max_length=32, examples=["mm-alpha"])]
KeyId = Annotated[str, Path(max_length=64, examples=["dxk_3f9a0c6e1b2d4a57"])]


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


@router.get("", response_model=list[ParticipantAccount],
            responses=error_responses(401, 403, 422, 429))
async def list_participants(
    admin: Admin,
    runtime: RuntimeDep,
    role: Annotated[Role | None, Query(description="Only those holding this role")] = None,
    status: Annotated[Literal["active", "disabled"] | None, Query(
        description="Only active or only disabled participants"
    )] = None,
    after: Annotated[str, Query(max_length=32, description="Ids after this one")] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ParticipantAccount]:
    """Every participant matching the filters, by id, a page at a time (pass the last
    ``participant_id`` as ``after``)."""
    disabled = None if status is None else status == "disabled"
    page = runtime.read(lambda exchange: exchange.participants.listed(
        after=after, limit=limit, role=role, disabled=disabled
    ))  # fmt: skip
    return [participant_account_view(participant) for participant in page]


@router.post("/{participant_id}/disable", response_model=ParticipantDisabled,
             responses=error_responses(400, 401, 403, 404, 413, 422, 429, 503))
async def disable_participant(
    participant_id: ParticipantId, body: ParticipantStatusChange, admin: Admin,
    runtime: RuntimeDep,
) -> ParticipantDisabled:
    """Disable a participant: its key stops authenticating (403 ``AUTH_DISABLED``), anything
    it sent that is not yet applied is refused, and its open orders are cancelled by the
    same command (listed in the answer). Its cash and licences stay. Disabling a disabled
    participant changes nothing."""
    outcome = await runtime.execute(DisableParticipant(
        admin.participant_id, participant_id, body.reason
    ))  # fmt: skip
    participant, cancelled = outcome.result
    return ParticipantDisabled(
        **participant_account_view(participant).model_dump(),
        cancelled_orders=[order_view(record) for record in cancelled],
    )


@router.post("/{participant_id}/enable", response_model=ParticipantAccount,
             responses=error_responses(400, 401, 403, 404, 413, 422, 429, 503))
async def enable_participant(
    participant_id: ParticipantId, body: ParticipantStatusChange, admin: Admin,
    runtime: RuntimeDep,
) -> ParticipantAccount:
    """Let a disabled participant back in; orders cancelled when it was disabled stay
    cancelled. Enabling an active participant changes nothing."""
    outcome = await runtime.execute(EnableParticipant(
        admin.participant_id, participant_id, body.reason
    ))  # fmt: skip
    return participant_account_view(outcome.result)


@router.post("/{participant_id}/api-key", status_code=201, response_model=ApiKeyIssued,
             responses=error_responses(401, 403, 404, 409, 422, 429, 503))
async def rotate_api_key(
    participant_id: ParticipantId, admin: Admin, runtime: RuntimeDep
) -> ApiKeyIssued:
    """Issue the participant a new API key, shown only in this answer. Its previous key (or
    none, if it was revoked) stops working at once: there is no grace period."""
    key = new_api_key()
    await runtime.execute(RotateApiKey(
        admin.participant_id, participant_id, key.key_id, secret_digest(key.secret)
    ))  # fmt: skip
    return ApiKeyIssued(participant_id=participant_id, key_id=key.key_id, api_key=str(key))


@router.delete("/{participant_id}/api-key/{key_id}", response_model=ParticipantAccount,
               responses=error_responses(401, 403, 404, 422, 429, 503))
async def revoke_api_key(
    participant_id: ParticipantId, key_id: KeyId, admin: Admin, runtime: RuntimeDep
) -> ParticipantAccount:
    """Revoke the participant's key ``key_id`` (its id, the part before the dot): it stops
    working at once, and the participant has no key until one is rotated in. Its orders are
    left alone. A key already revoked or rotated is a 404."""
    outcome = await runtime.execute(RevokeApiKey(admin.participant_id, participant_id, key_id))
    return participant_account_view(outcome.result)


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
