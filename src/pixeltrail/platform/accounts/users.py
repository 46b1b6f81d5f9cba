"""People who sign in to the dashboard: the first sign-up, passwords, sessions, invitations
and roles.

An account's first user is its owner; invited people join as members. Owners manage the
account (its settings, API keys, webhooks, who is in it and with which role); members do the
outreach (campaigns, contacts, mailboxes, tracking domains, reports). An account always keeps
at least one owner.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, delete, func, insert, select, update

from pixeltrail.config import Settings
from pixeltrail.platform.accounts.accounts import create_account, hash_password, password_matches
from pixeltrail.platform.contacts.addresses import normalize_email
from pixeltrail.platform.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from pixeltrail.platform.ids import new_id, now_ms
from pixeltrail.platform.mail.mailboxes import create_mailbox
from pixeltrail.store.schema import accounts, invites, users, web_sessions

OWNER = "owner"
MEMBER = "member"
ROLES = (OWNER, MEMBER)
SESSION_DAYS = 14
INVITE_DAYS = 7
_DAY_MS = 86_400_000
# Checked against when the email is unknown, so a sign-in takes as long either way.
_DUMMY_HASH = hash_password("not a real password, only for timing")


@dataclass(frozen=True)
class User:
    id: str
    account_id: str
    email: str
    role: str
    account_name: str

    @property
    def is_owner(self) -> bool:
        return self.role == OWNER


def require_owner(user: User, to: str) -> None:
    """Forbidden unless `user` is an owner of their account; `to` says what was refused."""
    _require_role(user.role, to)


def _require_role(role: str | None, to: str) -> None:
    if role != OWNER:
        raise Forbidden(f"only the account's owners can {to}: ask one of them")


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def instance_is_new(conn: Connection) -> bool:
    """True until the first account exists: the first visit then signs up."""
    return conn.execute(select(func.count()).select_from(accounts)).scalar_one() == 0


def sign_up_first(
    conn: Connection,
    settings: Settings,
    account_name: str,
    email: str,
    password: str,
    timezone: str = "UTC",
) -> User:
    """The first account of a fresh instance and its owner; refused once any account exists.

    The account gets a built-in outbox mailbox from the owner's address, so a first campaign
    can be sent at once without a mail server.
    """
    if not instance_is_new(conn):
        raise Conflict("this instance is already set up: sign in, or ask for an invitation")
    account, _key = create_account(conn, account_name, email, password, timezone)
    create_mailbox(conn, account.id, settings, name="Built-in outbox", from_email=email)
    user = user_by_email(conn, normalize_email(email, "email"))
    assert user is not None
    return user


def _users() -> Select[Any]:
    """Users with their account's name: what a `User` is made of."""
    return select(users, accounts.c.name.label("account_name")).join(
        accounts, accounts.c.id == users.c.account_id
    )


def _user(row: Any) -> User:
    return User(row.id, row.account_id, row.email, row.role, row.account_name)


def user_by_email(conn: Connection, email: str) -> User | None:
    row = conn.execute(_users().where(users.c.email == email)).first()
    return None if row is None else _user(row)


def check_password(conn: Connection, email: str, password: str) -> User:
    """The user with this email and password; the same Unauthorized for any mismatch."""
    try:
        address = normalize_email(email, "email")
    except Invalid:
        address = ""
    row = conn.execute(select(users).where(users.c.email == address)).first() if address else None
    if row is None or not row.password_hash:
        password_matches(_DUMMY_HASH, password)
        raise Unauthorized("wrong email or password")
    if not password_matches(row.password_hash, password):
        raise Unauthorized("wrong email or password")
    user = user_by_email(conn, address)
    assert user is not None
    return user


def open_session(conn: Connection, user: User) -> str:
    """A new session for the user; returns the cookie value (only its digest is stored)."""
    token = secrets.token_urlsafe(32)
    now = now_ms()
    conn.execute(
        insert(web_sessions).values(
            id=_digest(token),
            user_id=user.id,
            csrf=secrets.token_urlsafe(32),
            created_at_ms=now,
            expires_at_ms=now + SESSION_DAYS * _DAY_MS,
        )
    )
    return token


def session_of(conn: Connection, token: str) -> Session | None:
    """The live session behind a cookie value, None for anything else."""
    if not token or len(token) > 100:
        return None
    row = conn.execute(
        _users()
        .add_columns(web_sessions.c.csrf, web_sessions.c.expires_at_ms)
        .join(web_sessions, web_sessions.c.user_id == users.c.id)
        .where(web_sessions.c.id == _digest(token))
    ).first()
    if row is None or row.expires_at_ms <= now_ms():
        return None
    return Session(_user(row), row.csrf)


def close_session(conn: Connection, token: str) -> None:
    conn.execute(delete(web_sessions).where(web_sessions.c.id == _digest(token)))


def account_users(conn: Connection, account_id: str) -> list[User]:
    rows = conn.execute(
        _users().where(users.c.account_id == account_id).order_by(users.c.created_at_ms)
    )
    return [_user(row) for row in rows]


@dataclass(frozen=True)
class Invite:
    id: str
    email: str
    created_at_ms: int
    expires_at_ms: int
    accepted_at_ms: int | None


def _invite(row: Any) -> Invite:
    return Invite(row.id, row.email, row.created_at_ms, row.expires_at_ms, row.accepted_at_ms)


def invite_user(conn: Connection, inviter: User, email: str) -> tuple[Invite, str]:
    """An invitation for `email` to join the inviter's account as a member (owners only);
    returns it and its secret token. It replaces the account's open invitation for the same
    address, if any: that one's link stops working."""
    require_owner(inviter, "invite people")
    address = normalize_email(email, "email")
    if conn.execute(select(users.c.id).where(users.c.email == address)).first() is not None:
        raise Conflict(f"{address} already has a pixeltrail user", "email")
    # Locked: two invitations of one address at once still leave one open.
    _lock_account(conn, inviter.account_id)
    conn.execute(
        delete(invites).where(
            invites.c.account_id == inviter.account_id,
            invites.c.email == address,
            invites.c.accepted_at_ms.is_(None),
        )
    )
    token = secrets.token_urlsafe(32)
    now = now_ms()
    invite = Invite(new_id("inv"), address, now, now + INVITE_DAYS * _DAY_MS, None)
    conn.execute(
        insert(invites).values(
            id=invite.id,
            account_id=inviter.account_id,
            email=address,
            token_hash=_digest(token),
            invited_by=inviter.id,
            created_at_ms=now,
            expires_at_ms=invite.expires_at_ms,
        )
    )
    return invite, token


def account_invites(conn: Connection, account_id: str) -> list[Invite]:
    rows = conn.execute(
        select(invites).where(invites.c.account_id == account_id).order_by(invites.c.created_at_ms)
    )
    return [_invite(row) for row in rows]


def revoke_invite(conn: Connection, actor: User, invite_id: str) -> Invite:
    """Withdraw an open invitation of the actor's account (owners only): its link stops
    working. Accepted ones stay, as the record of who joined."""
    require_owner(actor, "withdraw invitations")
    row = conn.execute(
        select(invites).where(
            invites.c.id == invite_id,
            invites.c.account_id == actor.account_id,
            invites.c.accepted_at_ms.is_(None),
        )
    ).first()
    if row is None:
        raise NotFound("no such open invitation in this account")
    conn.execute(delete(invites).where(invites.c.id == row.id))
    return _invite(row)


def pending_invite(conn: Connection, token: str) -> Invite:
    """The open invitation behind a token; NotFound when unknown, used or expired."""
    row = conn.execute(select(invites).where(invites.c.token_hash == _digest(token))).first()
    if row is None or row.accepted_at_ms is not None or row.expires_at_ms <= now_ms():
        raise NotFound("this invitation is not valid any more: ask for a new one")
    return _invite(row)


def accept_invite(conn: Connection, token: str, password: str) -> User:
    """Create the invited user with their password; the invitation cannot be used again."""
    invite = pending_invite(conn, token)
    row = conn.execute(select(invites.c.account_id).where(invites.c.id == invite.id)).one()
    if conn.execute(select(users.c.id).where(users.c.email == invite.email)).first() is not None:
        raise Conflict(f"{invite.email} already has a pixeltrail user", "email")
    now = now_ms()
    conn.execute(
        insert(users).values(
            id=new_id("usr"),
            account_id=row.account_id,
            email=invite.email,
            password_hash=hash_password(password),
            role=MEMBER,
            created_at_ms=now,
        )
    )
    conn.execute(update(invites).where(invites.c.id == invite.id).values(accepted_at_ms=now))
    user = user_by_email(conn, invite.email)
    assert user is not None
    return user


def set_password(conn: Connection, email: str, password: str) -> None:
    """Set a user's password (the CLI's way in for accounts made before the dashboard)."""
    address = normalize_email(email, "email")
    done = conn.execute(
        update(users).where(users.c.email == address).values(password_hash=hash_password(password))
    )
    if done.rowcount == 0:
        raise NotFound(f"no user {address}")
    conn.execute(
        delete(web_sessions).where(
            web_sessions.c.user_id.in_(select(users.c.id).where(users.c.email == address))
        )
    )


def _lock_account(conn: Connection, account_id: str) -> None:
    """Lock the account row until the transaction ends, so that two role changes at once
    cannot leave it without an owner: the second waits, then finds what the first did."""
    conn.execute(select(accounts.c.id).where(accounts.c.id == account_id).with_for_update()).one()


def _colleague(conn: Connection, actor: User, user_id: str, to: str) -> Any:
    """The row of a user of the actor's account, once the actor is found to be an owner still
    (read with the account locked, not from the session: a role may have changed since)."""
    _lock_account(conn, actor.account_id)
    _require_role(conn.execute(select(users.c.role).where(users.c.id == actor.id)).scalar(), to)
    row = conn.execute(
        select(users).where(users.c.id == user_id, users.c.account_id == actor.account_id)
    ).first()
    if row is None:
        raise NotFound("no such user in this account")
    return row


def _owners(conn: Connection, account_id: str) -> int:
    count: int = conn.execute(
        select(func.count())
        .select_from(users)
        .where(users.c.account_id == account_id, users.c.role == OWNER)
    ).scalar_one()
    return count


def _give_role(conn: Connection, row: Any, role: str) -> User:
    """Give the user of `row` (their account locked) `role`; an account keeps an owner."""
    if role not in ROLES:
        raise Invalid(f"role is one of {', '.join(ROLES)}", "role")
    if row.role == OWNER and role != OWNER and _owners(conn, row.account_id) <= 1:
        raise Conflict(
            "the account needs at least one owner: make someone else owner first", "role"
        )
    conn.execute(update(users).where(users.c.id == row.id).values(role=role))
    user = user_by_email(conn, row.email)
    assert user is not None
    return user


def set_role(conn: Connection, actor: User, user_id: str, role: str) -> User:
    """Make a user of the actor's account an owner or a member (owners only; an account
    keeps at least one owner)."""
    return _give_role(conn, _colleague(conn, actor, user_id, "change roles"), role)


def set_role_by_email(conn: Connection, email: str, role: str) -> User:
    """The command line's way (whoever runs it runs the instance): give the user with this
    email `role`, say to make someone owner again when an account's owners have left."""
    address = normalize_email(email, "email")
    account_id = conn.execute(select(users.c.account_id).where(users.c.email == address)).scalar()
    if account_id is None:
        raise NotFound(f"no user {address}")
    _lock_account(conn, account_id)
    row = conn.execute(select(users).where(users.c.email == address)).one()
    return _give_role(conn, row, role)


def remove_user(conn: Connection, actor: User, user_id: str) -> str:
    """Remove a user from the actor's account (owners only, not themselves): their sessions
    end at once and they cannot sign in again; invitations they made stay, as the actor's.
    Returns the removed user's email."""
    row = _colleague(conn, actor, user_id, "remove people")
    if row.id == actor.id:
        raise Conflict("you cannot remove yourself: another owner can")
    conn.execute(delete(web_sessions).where(web_sessions.c.user_id == row.id))
    conn.execute(update(invites).where(invites.c.invited_by == row.id).values(invited_by=actor.id))
    conn.execute(delete(users).where(users.c.id == row.id))
    return str(row.email)
