"""Order mutations for channel systems: adapters from input to one service call and back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import strawberry

from loyalty import errors as domain
from loyalty.auth.principal import Role
from loyalty.graphql import permissions
from loyalty.graphql.context import Info
from loyalty.graphql.errors import ConflictError, NotFoundError, ValidationError
from loyalty.graphql.members.types import MemberNotActiveError
from loyalty.graphql.orders.inputs import RecordOrderInput, RefundOrderInput
from loyalty.graphql.orders.types import Order, OrderRefund, OrderTierChange
from loyalty.graphql.points.ids import member_pk
from loyalty.graphql.scalars import Long
from loyalty.members.errors import MemberNotActive
from loyalty.members.models import IdentityKind
from loyalty.orders import errors as order_errors
from loyalty.orders import refunds, service
from loyalty.points import notify

CHANNEL_SYSTEMS = frozenset({Role.ADMIN, Role.STAFF, Role.SERVICE})
permissions.register(
    {"Mutation.recordOrder": CHANNEL_SYSTEMS, "Mutation.refundOrder": CHANNEL_SYSTEMS}
)


async def _refund_scope(arguments: Mapping[str, Any]) -> permissions.Scope:
    """A refund acts for the store of the order it names."""
    given: RefundOrderInput = arguments["input"]
    return permissions.Scope(
        store_id=await service.store_of(
            channel=given.channel.value, external_id=given.order_external_id
        )
    )


permissions.register_scope_lookups({"Mutation.refundOrder": _refund_scope})


@strawberry.type(description="The order was recorded (or had been: `replayed`).")
class RecordOrderSuccess:
    order: Order = strawberry.field(description="The order.")
    points_earned: Long = strawberry.field(
        description="Active points earned (rounded down once per order, after caps)."
    )
    points_pending: Long = strawberry.field(
        description="Points pending until the return window ends."
    )
    balance: Long | None = strawberry.field(
        description="The member's balance right after; null for a guest order."
    )
    tier_change: OrderTierChange | None = strawberry.field(
        description="The tier change this order caused, if any."
    )
    guest: bool = strawberry.field(description="No member known yet.")
    replayed: bool = strawberry.field(
        description="True when this order id was recorded before: the first result is returned."
    )


@strawberry.type(description="More would be refunded than was bought; nothing was written.")
class RefundExceedsOrderError:
    code: str = strawberry.field(description="Always `REFUND_EXCEEDS_ORDER`.")
    message: str = strawberry.field(description="For people.")
    line_no: int = strawberry.field(description="The line (0: the order is fully refunded).")
    requested: int = strawberry.field(description="Units requested.")
    refundable: int = strawberry.field(description="Units left to refund.")


@strawberry.type(description="The refund was recorded (or had been: `replayed`).")
class RefundOrderSuccess:
    refund: OrderRefund = strawberry.field(description="The refund and its points effects.")
    order: Order = strawberry.field(description="The order after the refund.")
    replayed: bool = strawberry.field(description="True when this refund id was seen before.")


RecordOrderResult = Annotated[
    RecordOrderSuccess | ValidationError | NotFoundError | ConflictError | MemberNotActiveError,
    strawberry.union("RecordOrderResult", description="Outcome of `recordOrder`."),
]
RefundOrderResult = Annotated[
    RefundOrderSuccess | ValidationError | NotFoundError | ConflictError | RefundExceedsOrderError,
    strawberry.union("RefundOrderResult", description="Outcome of `refundOrder`."),
]


@strawberry.type
class OrderMutation:
    @strawberry.mutation(
        description="Record an order from a channel system. Idempotent on (channel, "
        "externalId): the same order again returns the first result; other content under the "
        "same id is a `ConflictError` (`ORDER_CONFLICT`). Points are rounded down once per order."
    )
    async def record_order(self, info: Info, input: RecordOrderInput) -> RecordOrderResult:
        channel = input.channel.value
        try:
            member_id = member_pk(input.member_id) if input.member_id is not None else None
            identity = (
                service.IdentityRef(
                    kind=IdentityKind(input.identity.kind.value),
                    value=input.identity.value,
                    scope=input.identity.scope,
                )
                if input.identity is not None
                else None
            )
            result = await service.record(
                channel=channel,
                external_id=input.external_id,
                occurred_at=input.occurred_at,
                currency=input.currency,
                lines=[
                    service.LineIn(
                        sku=line.sku,
                        quantity=line.quantity,
                        unit_price=line.unit_price,
                        name=line.name,
                        category=line.category,
                    )
                    for line in input.lines
                ],
                member_id=member_id,
                identity=identity,
                store_id=input.store_id or info.context.principal.store_id,
                discount_total=input.discount_total,
                points_payment=input.points_payment,
                jobs=info.context.jobs,
            )
        except domain.ValidationError as error:
            return ValidationError.from_domain(error)
        except domain.NotFoundError as error:
            return NotFoundError.from_domain(error)
        except order_errors.OrderConflict as error:
            return ConflictError.from_domain(error)
        except MemberNotActive as error:
            return MemberNotActiveError(code=error.code, message=error.message)
        await info.context.jobs.flush()
        if result.order.member_id is not None and not result.replayed:  # type: ignore[attr-defined]
            await notify.balance_changed(info.context.redis, [result.order.member_id])  # type: ignore[attr-defined]
        return RecordOrderSuccess(
            order=Order.from_model(result.order),
            points_earned=result.points_earned,
            points_pending=result.points_pending,
            balance=result.balance,
            tier_change=OrderTierChange.from_dict(result.tier_change),
            guest=result.guest,
            replayed=result.replayed,
        )

    @strawberry.mutation(
        description="Refund lines (or the whole rest) of an order. Idempotent on refundId. "
        "Points earned on the refunded lines are reversed once (clawed back up to the balance; "
        "the rest is a debt later earnings pay first); points that paid for them return to "
        "their original lots with their original expiry."
    )
    async def refund_order(self, info: Info, input: RefundOrderInput) -> RefundOrderResult:
        channel = input.channel.value
        try:
            result = await refunds.refund(
                channel=channel,
                order_external_id=input.order_external_id,
                refund_id=input.refund_id,
                lines=[refunds.RefundLineIn(x.line_no, x.quantity) for x in input.lines or []],
                whole=input.whole,
                jobs=info.context.jobs,
            )
        except domain.ValidationError as error:
            return ValidationError.from_domain(error)
        except domain.NotFoundError as error:
            return NotFoundError.from_domain(error)
        except order_errors.RefundConflict as error:
            return ConflictError.from_domain(error)
        except order_errors.RefundExceedsOrder as error:
            return RefundExceedsOrderError(
                code=error.code,
                message=error.message,
                line_no=error.line_no,
                requested=error.requested,
                refundable=error.refundable,
            )
        await info.context.jobs.flush()
        member_id = result.refund.member_id
        if member_id is not None and not result.replayed:
            await notify.balance_changed(info.context.redis, [member_id])
        return RefundOrderSuccess(
            refund=OrderRefund.from_model(result.refund),
            order=Order.from_model(result.order),
            replayed=result.replayed,
        )
