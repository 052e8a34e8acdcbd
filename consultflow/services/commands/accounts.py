"""Registered commands: accounts: passwords, tokens, two-step codes, roles, and their own log."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TypeVar

from consultflow.domain.accounts import TOKEN_DAYS
from consultflow.domain.errors import ValidationError
from consultflow.domain.heads import SignedHead, checked
from consultflow.domain.roles import Role
from consultflow.services import (
    accounts,
    heads,
    verify,
)
from consultflow.services.commands.core import (
    STAFF,
    Nothing,
    _signed,
    command,
)
from consultflow.services.context import ServiceContext

__all__ = [
    "AccountEvents",
    "AccountEventsOf",
    "DisableTotp",
    "Done",
    "IssueToken",
    "ListTokens",
    "OfAccount",
    "OfToken",
    "RoleChange",
    "SetPassword",
    "Tokens",
    "TotpCode",
    "VerifyAccounts",
]

T = TypeVar("T")


@dataclass(frozen=True)
class SetPassword:
    """Set a person's password (your own, or anyone's as a coordinator)."""

    name: str
    password: str
    current_password: str | None = None  # your own password: the current one too


@dataclass(frozen=True)
class Done:
    """A change that returns nothing but that it was made."""

    done: str


@command("account.set-password", "Set a password: your own, or anyone's (coordinators).", input=SetPassword,
         output=Done, roles=STAFF, writes=True)  # fmt: skip
def _set_password(ctx: ServiceContext, acting: str | None, given: SetPassword) -> Done:
    accounts.set_password(
        ctx, acting=acting, name=given.name, password=given.password, current_password=given.current_password
    )
    return Done(f"password set for {given.name}")


@dataclass(frozen=True)
class IssueToken:
    """Another personal access token for the acting person (for automation)."""

    name: str
    scope: str = "read"
    expires_days: int = TOKEN_DAYS


@command("account.issue-token", "Issue another personal access token (shown once).", input=IssueToken,
         output=accounts.IssuedToken, roles=STAFF, writes=True)  # fmt: skip
def _issue_token(ctx: ServiceContext, acting: str | None, given: IssueToken) -> accounts.IssuedToken:
    return accounts.issue_token(
        ctx, acting=_signed(acting), name=given.name, scope=given.scope, expires_days=given.expires_days
    )


@dataclass(frozen=True)
class OfToken:
    """One token, by id."""

    token_id: int


@command("account.revoke-token", "Revoke a token: your own, or anyone's (coordinators).", input=OfToken,
         output=Done, roles=STAFF, writes=True)  # fmt: skip
def _revoke_token(ctx: ServiceContext, acting: str | None, given: OfToken) -> Done:
    accounts.revoke_token(ctx, acting=_signed(acting), token_id=given.token_id)
    return Done(f"token {given.token_id} revoked")


@dataclass(frozen=True)
class ListTokens:
    """Your tokens, or everyone's (coordinators)."""

    everyone: bool = False


@dataclass(frozen=True)
class Tokens:
    """Tokens as listed (never the token itself)."""

    tokens: tuple[accounts.TokenView, ...]


@command("account.tokens", "Personal access tokens: yours, or everyone's (coordinators).", input=ListTokens,
         output=Tokens, roles=STAFF, writes=False)  # fmt: skip
def _tokens(ctx: ServiceContext, acting: str | None, given: ListTokens) -> Tokens:
    return Tokens(tuple(accounts.list_tokens(ctx, acting=_signed(acting), everyone=given.everyone)))


@command("account.totp-enable", "Start two-step sign-in: a secret for your authenticator app.", input=Nothing,
         output=accounts.TotpSetup, roles=STAFF, writes=True)  # fmt: skip
def _totp_enable(ctx: ServiceContext, acting: str | None, _given: Nothing) -> accounts.TotpSetup:
    return accounts.enable_totp(ctx, acting=_signed(acting))


@dataclass(frozen=True)
class TotpCode:
    """A code from the authenticator app, and your current password."""

    code: str
    current_password: str | None = None


@command("account.totp-confirm", "Confirm two-step sign-in with a first code.", input=TotpCode, output=Done,
         roles=STAFF, writes=True)  # fmt: skip
def _totp_confirm(ctx: ServiceContext, acting: str | None, given: TotpCode) -> Done:
    accounts.confirm_totp(ctx, acting=_signed(acting), code=given.code, current_password=given.current_password)
    return Done("two-step sign-in is on")


@dataclass(frozen=True)
class OfAccount:
    """One person's account, by name."""

    name: str


@dataclass(frozen=True)
class DisableTotp:
    """Whose two-step sign-in to turn off (your own takes your current password)."""

    name: str
    current_password: str | None = None


@command("account.totp-disable", "Turn two-step sign-in off: your own, or anyone's (coordinators).",
         input=DisableTotp, output=Done, roles=STAFF, writes=True)  # fmt: skip
def _totp_disable(ctx: ServiceContext, acting: str | None, given: DisableTotp) -> Done:
    accounts.disable_totp(ctx, acting=_signed(acting), name=given.name, current_password=given.current_password)
    return Done(f"two-step sign-in is off for {given.name}")


@command("account.disable", "Disable a person's account and revoke its tokens.", input=OfAccount, output=Done,
         roles=frozenset({Role.COORDINATOR}), writes=True)  # fmt: skip
def _disable(ctx: ServiceContext, acting: str | None, given: OfAccount) -> Done:
    accounts.disable_account(ctx, acting=_signed(acting), name=given.name)
    return Done(f"account {given.name} disabled; its tokens are revoked")


@command("account.enable", "Enable a disabled account again.", input=OfAccount, output=Done,
         roles=frozenset({Role.COORDINATOR}), writes=True)  # fmt: skip
def _enable(ctx: ServiceContext, acting: str | None, given: OfAccount) -> Done:
    accounts.enable_account(ctx, acting=_signed(acting), name=given.name)
    return Done(f"account {given.name} enabled")


@dataclass(frozen=True)
class RoleChange:
    """A role given to or taken from a person."""

    name: str
    role: str


@command("role.grant", "Give a person a role.", input=RoleChange, output=Done,
         roles=frozenset({Role.COORDINATOR}), writes=True)  # fmt: skip
def _grant(ctx: ServiceContext, acting: str | None, given: RoleChange) -> Done:
    accounts.grant_role(ctx, acting=_signed(acting), name=given.name, role=given.role)
    return Done(f"{given.name} now has the role {given.role}")


@command("role.revoke", "Take a role from a person.", input=RoleChange, output=Done,
         roles=frozenset({Role.COORDINATOR}), writes=True)  # fmt: skip
def _revoke(ctx: ServiceContext, acting: str | None, given: RoleChange) -> Done:
    accounts.revoke_role(ctx, acting=_signed(acting), name=given.name, role=given.role)
    return Done(f"{given.name} no longer has the role {given.role}")


@dataclass(frozen=True)
class AccountEventsOf:
    """Account events, newest first."""

    name: str | None = None
    kind: str | None = None
    limit: int = 100


@dataclass(frozen=True)
class AccountEvents:
    """Events of the account log."""

    events: tuple[accounts.AccountEventView, ...]


@command("audit.accounts", "The account log: sign-ins, tokens, roles and account changes.", input=AccountEventsOf,
         output=AccountEvents, roles=STAFF, writes=False)  # fmt: skip
def _account_events(ctx: ServiceContext, acting: str | None, given: AccountEventsOf) -> AccountEvents:
    found = accounts.account_events(ctx, acting=_signed(acting), name=given.name, kind=given.kind, limit=given.limit)
    return AccountEvents(tuple(found))


@dataclass(frozen=True)
class VerifyAccounts:
    """Check the account log's chain."""

    expect_head: str | None = None
    require_keyed: bool = False
    heads: tuple[SignedHead, ...] = ()  # signed heads published earlier (the account log's are checked)


@command("audit.verify-accounts", "Recompute the account log's hash chain (and against its published heads).",
         input=VerifyAccounts, output=accounts.AccountChainReport, roles=STAFF, writes=False)  # fmt: skip
def _verify_accounts(ctx: ServiceContext, _acting: str | None, given: VerifyAccounts) -> accounts.AccountChainReport:
    expected = verify.parse_head(given.expect_head) if given.expect_head is not None else None
    published = [
        checked(h.record(), f"the published head #{h.seq} of the account log")
        for h in given.heads
        if h.consultation_id is None
    ]
    if given.heads and not published:
        msg = "none of the published heads is the account log's (they are consultations': use audit verify)"
        raise ValidationError(msg)
    report = accounts.verify_account_chain(ctx, expect_head=expected, require_keyed=given.require_keyed)
    problem = heads.accounts_against_published(ctx, published) if report.intact else None
    if problem is None:
        return report
    return replace(report, intact=False, broken_seq=problem[0], problem=problem[1])
