"""Staff first-login enrolment, revocable owner and shop tokens, closable owner accounts.

- staff_account: an account made (or reset) by an administrator holds only a one-time enrolment
  secret (its SHA-256, with an expiry) until its owner sets the password and enrols the TOTP;
  `enrolled_at` marks the end of that. Existing accounts were enrolled the old way: they count as
  enrolled from their creation, so they keep logging in.
- owner_account, enterprise_user: `token_generation`, carried in each signed token; logout and a
  password change raise it, so every earlier token of the account stops working.
- owner_account: `closed_at`; a closed account keeps its row (ratings and complaints point at it)
  but no personal field, so phone and its hash may be NULL.

Revision ID: 0010
Revises: 0006
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE staff_account ADD COLUMN enrol_secret_hash bytea")
    op.execute("ALTER TABLE staff_account ADD COLUMN enrol_expires_at timestamptz")
    op.execute("ALTER TABLE staff_account ADD COLUMN enrolled_at timestamptz")
    op.execute("UPDATE staff_account SET enrolled_at = created_at")
    op.execute("ALTER TABLE staff_account ALTER COLUMN totp_enc DROP NOT NULL")
    op.execute("ALTER TABLE personal.owner_account ADD COLUMN token_generation integer NOT NULL DEFAULT 0")
    op.execute("ALTER TABLE personal.owner_account ADD COLUMN closed_at timestamptz")
    op.execute("ALTER TABLE personal.owner_account ALTER COLUMN phone_hash DROP NOT NULL")
    op.execute("ALTER TABLE personal.owner_account ALTER COLUMN phone_enc DROP NOT NULL")
    op.execute("ALTER TABLE enterprise_user ADD COLUMN token_generation integer NOT NULL DEFAULT 0")


def downgrade() -> None:
    op.execute("ALTER TABLE enterprise_user DROP COLUMN token_generation")
    # closed accounts keep their rows (others point at them), with placeholders nobody can log in by
    op.execute(
        "UPDATE personal.owner_account SET phone_hash = sha256(('closed:' || id)::bytea), phone_enc = ''"
        " WHERE phone_hash IS NULL"
    )
    op.execute("ALTER TABLE personal.owner_account ALTER COLUMN phone_enc SET NOT NULL")
    op.execute("ALTER TABLE personal.owner_account ALTER COLUMN phone_hash SET NOT NULL")
    op.execute("ALTER TABLE personal.owner_account DROP COLUMN closed_at")
    op.execute("ALTER TABLE personal.owner_account DROP COLUMN token_generation")
    # accounts still waiting for their first login cannot log in the old way: disabled
    op.execute(
        "UPDATE staff_account SET totp_enc = '', disabled_at = coalesce(disabled_at, now())"
        " WHERE totp_enc IS NULL"
    )
    op.execute("ALTER TABLE staff_account ALTER COLUMN totp_enc SET NOT NULL")
    op.execute("ALTER TABLE staff_account DROP COLUMN enrolled_at")
    op.execute("ALTER TABLE staff_account DROP COLUMN enrol_expires_at")
    op.execute("ALTER TABLE staff_account DROP COLUMN enrol_secret_hash")
