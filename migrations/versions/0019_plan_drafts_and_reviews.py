"""The draft plan in versions, its clauses, and the public's review of them (issue 26).

- plan_version: one imported draft of a consultation's plan (numbered 1, 2, … per consultation).
- plan_clause: a clause's identity in a consultation, by its number ("2.3"): the same number in
  a later version is the same clause (its id stays).
- plan_clause_text: what a clause says in one version, with its section.
- plan_review: a review round (成果评审 / 大众点评): the round it is, and the plan version it rates.
- plan_rating: one participant's rating of one clause in a review (满意 / 基本满意 / 不满意), with a
  comment sealed with the participant's key like any opinion text; a comment is also an opinion.
- opinion_clause: which clauses an opinion is linked to (a review comment, or a planner's link).

Only new tables: expand only. Grants (PostgreSQL): the server's role reads and writes all of them;
the reader reads the plan's texts (the planners' text, no personal data), reviews and links, and of
the ratings only what carries no personal data (no participant, comment or form key). The worker
needs none of them. SQLite has no roles.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from consultflow.store.roles import current_roles
from consultflow.store.types import UTCDateTime

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def upgrade() -> None:
    op.create_table(
        "plan_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.Column("clauses", sa.Integer(), nullable=False),
        sa.Column("imported_at", UTCDateTime(), nullable=False),
        sa.Column("imported_by_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["consultation_id"], ["consultation.id"], name=op.f("fk_plan_version_consultation_id_consultation")
        ),
        sa.ForeignKeyConstraint(["imported_by_id"], ["actor.id"], name=op.f("fk_plan_version_imported_by_id_actor")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_version")),
        sa.UniqueConstraint("consultation_id", "number", name=op.f("uq_plan_version_consultation_id_number")),
    )
    op.create_table(
        "plan_clause",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["consultation_id"], ["consultation.id"], name=op.f("fk_plan_clause_consultation_id_consultation")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_clause")),
        sa.UniqueConstraint("consultation_id", "number", name=op.f("uq_plan_clause_consultation_id_number")),
    )
    op.create_table(
        "plan_clause_text",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("clause_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("section_no", sa.String(length=40), nullable=False),
        sa.Column("section_title", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"], ["plan_version.id"], name=op.f("fk_plan_clause_text_version_id_plan_version")
        ),
        sa.ForeignKeyConstraint(
            ["clause_id"], ["plan_clause.id"], name=op.f("fk_plan_clause_text_clause_id_plan_clause")
        ),
        sa.PrimaryKeyConstraint("version_id", "clause_id", name=op.f("pk_plan_clause_text")),
    )
    op.create_index(op.f("ix_plan_clause_text_clause_id"), "plan_clause_text", ["clause_id"])
    op.create_table(
        "plan_review",
        sa.Column("round_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=60), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["round_id"], ["consultation_round.id"], name=op.f("fk_plan_review_round_id_consultation_round")
        ),
        sa.ForeignKeyConstraint(
            ["consultation_id"], ["consultation.id"], name=op.f("fk_plan_review_consultation_id_consultation")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"], ["plan_version.id"], name=op.f("fk_plan_review_version_id_plan_version")
        ),
        sa.PrimaryKeyConstraint("round_id", name=op.f("pk_plan_review")),
    )
    op.create_index(op.f("ix_plan_review_consultation_id"), "plan_review", ["consultation_id"])
    op.create_table(
        "plan_rating",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("clause_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("rating", sa.String(length=20), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("opinion_id", sa.Integer(), nullable=True),
        sa.Column("form_key", sa.String(length=64), nullable=True),
        sa.Column("recorded_by_id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("rating IN ('satisfied', 'mostly', 'not_satisfied')", name=op.f("ck_plan_rating_rating")),
        sa.ForeignKeyConstraint(
            ["round_id"], ["plan_review.round_id"], name=op.f("fk_plan_rating_round_id_plan_review")
        ),
        sa.ForeignKeyConstraint(["clause_id"], ["plan_clause.id"], name=op.f("fk_plan_rating_clause_id_plan_clause")),
        sa.ForeignKeyConstraint(
            ["participant_id"], ["participant.id"], name=op.f("fk_plan_rating_participant_id_participant")
        ),
        sa.ForeignKeyConstraint(["opinion_id"], ["opinion.id"], name=op.f("fk_plan_rating_opinion_id_opinion")),
        sa.ForeignKeyConstraint(["recorded_by_id"], ["actor.id"], name=op.f("fk_plan_rating_recorded_by_id_actor")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_rating")),
        sa.UniqueConstraint(
            "round_id", "clause_id", "participant_id", name=op.f("uq_plan_rating_round_id_clause_id_participant_id")
        ),
    )
    op.create_index(op.f("ix_plan_rating_form_key"), "plan_rating", ["form_key"])
    op.create_table(
        "opinion_clause",
        sa.Column("opinion_id", sa.Integer(), nullable=False),
        sa.Column("clause_id", sa.Integer(), nullable=False),
        sa.Column("linked_at", UTCDateTime(), nullable=False),
        sa.Column("linked_by_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["opinion_id"], ["opinion.id"], name=op.f("fk_opinion_clause_opinion_id_opinion")),
        sa.ForeignKeyConstraint(
            ["clause_id"], ["plan_clause.id"], name=op.f("fk_opinion_clause_clause_id_plan_clause")
        ),
        sa.ForeignKeyConstraint(["linked_by_id"], ["actor.id"], name=op.f("fk_opinion_clause_linked_by_id_actor")),
        sa.PrimaryKeyConstraint("opinion_id", "clause_id", name=op.f("pk_opinion_clause")),
    )
    op.create_index(op.f("ix_opinion_clause_clause_id"), "opinion_clause", ["clause_id"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        roles = current_roles(bind)
        there = set(
            bind.execute(
                sa.text("SELECT rolname FROM pg_roles WHERE rolname IN (:s, :r)"),
                {"s": roles["server"], "r": roles["reader"]},
            ).scalars()
        )
        server, reader = _ident(roles["server"]), _ident(roles["reader"])
        tables = "plan_version, plan_clause, plan_clause_text, plan_review, plan_rating, opinion_clause"
        if roles["server"] in there:
            op.execute(f"GRANT SELECT, INSERT, UPDATE ON {tables} TO {server}")
            sequences = "plan_version_id_seq, plan_clause_id_seq, plan_rating_id_seq"
            op.execute(f"GRANT USAGE, SELECT ON SEQUENCE {sequences} TO {server}")
        if roles["reader"] in there:
            op.execute(
                f"GRANT SELECT ON plan_version, plan_clause, plan_clause_text, plan_review, opinion_clause TO {reader}"
            )
            op.execute(f"GRANT SELECT (id, round_id, clause_id, rating, opinion_id, at) ON plan_rating TO {reader}")


def downgrade() -> None:
    op.drop_table("opinion_clause")
    op.drop_table("plan_rating")
    op.drop_table("plan_review")
    op.drop_table("plan_clause_text")
    op.drop_table("plan_clause")
    op.drop_table("plan_version")
