"""One audit row per page, and the audit and event tables partitioned by month (issue 19).

1. **An audit row names every patient it was about** (`audit_events.death_ids`, replacing
   `death_id`): a page of 50 deaths or referrals writes one row naming the 50, not 50 rows.
   On PostgreSQL the column is `uuid[]` with a GIN index, so "who read patient X" is one
   query (`death_ids @> '{X}'`); on SQLite it is a JSON array. Existing rows keep their one
   death as a one-element list, which app.audit.integrity hashes exactly as it hashed the old
   column, so every sealed row still verifies.
2. **PostgreSQL: `audit_events` and `outbox_events` become partitioned by month of
   `occurred_at`** (declarative range partitions `<table>_pYYYY_MM`, months in UTC). The
   rows are copied into the new tables (the old ones are renamed aside, then dropped). A
   partitioned table's unique indexes must include the partition key, so the primary keys
   become `(id, occurred_at)`, and `ix_audit_events_chain_seq` and `ix_outbox_events_position`
   stop being unique (`lfd audit verify` reports a place taken twice; an event's `seq` comes
   from an identity and is unique by construction). `outbox_events` also has a DEFAULT
   partition for events dated outside every month's partition (a caller may date an event:
   the overdue job's clock); `audit_events` has none, because its rows are always stamped
   with the time they are written, and because a default partition would stop PostgreSQL
   reading the months newest first and stopping at the page's end ("ordered append").
3. **Months are made ahead** by `lfd_ensure_partitions(table, from, months)`, a SECURITY
   DEFINER function owned by the tables' owner: the service's role owns nothing and cannot
   create a partition, but may call it (the background runner does, every pass: app.partitions).
   Each partition forces row-level security with no policy of its own, so a query that names a
   partition directly sees nothing; through the parent, the parent's policies apply (rewritten
   here for `death_ids`).
4. **Closed months of events**: `lfd_close_event_months(before)` closes each month of events
   that ended before `before` (the runner passes now less a grace period): it waits for every
   transaction still writing into the month, records the month's highest position in
   `outbox_closed_months`, and adds a CHECK to the partition that refuses any later row above
   it. The change feed then skips every closed month whose positions all lie before its
   cursor (app.events.months), so a page reads one or two months, not every month.
5. **Retention may move the chain's start** (`audit_chain_heads.start_seq`/`start_hash`), and
   only a member of the table owner's role may (the head's trigger): `lfd retention` drops
   whole months of audit rows, as the owner, and records where the chain now starts. The
   append-only trigger now compares the whole row (every column but the chain's), not a list
   of columns that had fallen behind the table.

SQLite stays unpartitioned: its tables are rebuilt with the new key and column.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03 18:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AHEAD = 3  # months made ahead of the current one

AUDIT_COLUMNS = (
    "id, occurred_at, client_id, client_name, on_behalf_of, on_behalf_of_verified,"
    " on_behalf_of_role, action, resource_type, resource_id, organisation_id, request_id,"
    " outcome, query_hash, row_hash, chain_seq, chain_hash"
)
EVENT_COLUMNS = (
    "id, type, resource_type, resource_id, death_id, organisation_id, changed, occurred_at,"
    " client_id, request_id, txid, seq"
)

CREATE_AUDIT = """
CREATE TABLE audit_events (
    id uuid NOT NULL,
    occurred_at timestamp with time zone NOT NULL,
    client_id uuid,
    client_name varchar(200),
    on_behalf_of varchar(200),
    on_behalf_of_verified boolean,
    on_behalf_of_role varchar(200),
    action varchar(60) NOT NULL,
    resource_type varchar(40) NOT NULL,
    resource_id uuid,
    death_ids uuid[] NOT NULL,
    organisation_id uuid,
    request_id varchar(64),
    outcome varchar(20) NOT NULL,
    query_hash varchar(64),
    row_hash varchar(64) NOT NULL,
    chain_seq bigint,
    chain_hash varchar(64),
    CONSTRAINT pk_audit_events PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at)
"""
CREATE_EVENTS = """
CREATE TABLE outbox_events (
    id uuid NOT NULL,
    type varchar(60) NOT NULL,
    resource_type varchar(40) NOT NULL,
    resource_id uuid NOT NULL,
    death_id uuid,
    organisation_id uuid,
    changed jsonb NOT NULL,
    occurred_at timestamp with time zone NOT NULL,
    client_id uuid,
    request_id varchar(64),
    txid bigint NOT NULL DEFAULT pg_current_xact_id()::text::bigint,
    seq bigint GENERATED BY DEFAULT AS IDENTITY NOT NULL,
    CONSTRAINT pk_outbox_events PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at)
"""

# (name, table, columns, where, using)
AUDIT_INDEXES = (
    ("ix_audit_events_occurred_at", ["occurred_at"], None, None),
    ("ix_audit_events_client_id_occurred_at", ["client_id", "occurred_at"], None, None),
    (
        "ix_audit_events_organisation_id_occurred_at",
        ["organisation_id", "occurred_at"],
        None,
        None,
    ),
    ("ix_audit_events_resource_id_occurred_at", ["resource_id", "occurred_at"], None, None),
    ("ix_audit_events_chain_seq", ["chain_seq"], None, None),
    ("ix_audit_events_unsealed", ["occurred_at", "id"], "chain_seq IS NULL", None),
    (
        "ix_audit_events_query_hash_occurred_at",
        ["query_hash", "occurred_at"],
        "query_hash IS NOT NULL",
        None,
    ),
    ("ix_audit_events_death_ids", ["death_ids"], None, "gin"),
)
EVENT_INDEXES = (
    ("ix_outbox_events_occurred_at", ["occurred_at"], None, None),
    ("ix_outbox_events_resource", ["resource_type", "resource_id", "txid"], None, None),
    ("ix_outbox_events_position", ["txid", "seq"], None, None),
)

# 0021's rules for the two tables, and the audit table's for a list of patients.
SCOPE_ALL = "(SELECT lfd_scope_all())"
ORGANISATIONS = "ANY ((SELECT lfd_scope_organisations())::uuid[])"
EVENT_RULE = (
    f"(death_id IS NULL AND (organisation_id IS NULL OR organisation_id = {ORGANISATIONS}))"  # noqa: S608
    " OR (death_id IS NOT NULL AND EXISTS (SELECT 1 FROM deaths d"
    " WHERE d.id = outbox_events.death_id OFFSET 0))"
)
AUDIT_RULE = (
    f"organisation_id = {ORGANISATIONS}"  # noqa: S608
    " OR (cardinality(death_ids) > 0 AND EXISTS (SELECT 1 FROM deaths d"
    " WHERE d.id = ANY (audit_events.death_ids) OFFSET 0))"
)
AUDIT_RULE_0021 = (
    f"organisation_id = {ORGANISATIONS}"  # noqa: S608
    " OR (death_id IS NOT NULL AND EXISTS (SELECT 1 FROM deaths d"
    " WHERE d.id = audit_events.death_id OFFSET 0))"
)

# Making a month's partition: a table of its own, then attached (which takes a lighter lock on
# the parent than CREATE TABLE ... PARTITION OF: reads and writes go on meanwhile). It enables
# row-level security with no policy of its own: the service's role, which owns nothing, reads
# nothing by naming a partition; through the parent, the parent's (forced) policies apply. The
# owner passes a partition's (unforced) security: its own functions below read partitions.
MAKE_PARTITION = r"""
CREATE OR REPLACE FUNCTION lfd_make_partition(p_table text, p_month date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public SET lfd.scope = 'all'
AS $$
DECLARE
    part text := format('%s_p%s', p_table, to_char(p_month, 'YYYY_MM'));
    low timestamptz := (date_trunc('month', p_month)::timestamp AT TIME ZONE 'UTC');
    high timestamptz := ((date_trunc('month', p_month) + interval '1 month')::timestamp
                         AT TIME ZONE 'UTC');
    moving text;
BEGIN
    IF p_table NOT IN ('audit_events', 'outbox_events') THEN
        RAISE EXCEPTION 'lfd_make_partition: % is not partitioned by month', p_table;
    END IF;
    IF to_regclass(format('public.%I', part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE public.%I (LIKE public.%I INCLUDING DEFAULTS)', part, p_table);
    -- Rows of this month waiting in the events' default partition move into the new month (the
    -- owner reads and writes partitions past their row-level security, which is not forced).
    IF p_table = 'outbox_events' AND to_regclass('public.outbox_events_default') IS NOT NULL THEN
        moving := format('occurred_at >= %L AND occurred_at < %L', low, high);
        EXECUTE format('INSERT INTO public.%I SELECT * FROM outbox_events_default WHERE %s',
                       part, moving);
        EXECUTE format('DELETE FROM outbox_events_default WHERE %s', moving);
    END IF;
    EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', part);
    EXECUTE format('ALTER TABLE public.%I ATTACH PARTITION public.%I FOR VALUES FROM (%L) TO (%L)',
                   p_table, part, low, high);
    RETURN true;
END $$
"""
ENSURE_PARTITIONS = r"""
CREATE OR REPLACE FUNCTION lfd_ensure_partitions(p_table text, p_from date, p_months integer)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public SET lfd.scope = 'all'
AS $$
DECLARE
    made integer := 0;
BEGIN
    IF p_months < 0 OR p_months > 240 THEN
        RAISE EXCEPTION 'lfd_ensure_partitions: % months is out of range (0 to 240)', p_months;
    END IF;
    FOR i IN 0..p_months LOOP
        IF lfd_make_partition(p_table, (date_trunc('month', p_from) + i * interval '1 month')::date)
        THEN
            made := made + 1;
        END IF;
    END LOOP;
    RETURN made;
END $$
"""
# Closing a month of events for good (docs/change-feed.md, "Partitions"): SHARE on the
# partition waits for every transaction that inserted into it and keeps new ones out while the
# month's highest position is read; the CHECK then refuses any later row above it.
CLOSE_EVENT_MONTHS = r"""
CREATE OR REPLACE FUNCTION lfd_close_event_months(p_before timestamptz) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public SET lfd.scope = 'all'
AS $$
DECLARE
    month record;
    top bigint;
    closed integer := 0;
BEGIN
    FOR month IN
        SELECT c.relname AS part,
               to_date(substring(c.relname from '_p(\d{4}_\d{2})$'), 'YYYY_MM') AS first_day
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'public.outbox_events'::regclass
          AND c.relname ~ '^outbox_events_p\d{4}_\d{2}$'
        ORDER BY 2
    LOOP
        CONTINUE WHEN (month.first_day + interval '1 month')::timestamp AT TIME ZONE 'UTC'
            > p_before;
        CONTINUE WHEN EXISTS (SELECT 1 FROM outbox_closed_months m
                              WHERE m.month = month.first_day);
        EXECUTE format('LOCK TABLE public.%I IN SHARE MODE', month.part);
        EXECUTE format('SELECT coalesce(max(txid), 0) FROM public.outbox_events'
                       ' WHERE occurred_at >= %L AND occurred_at < %L',
                       month.first_day::timestamp AT TIME ZONE 'UTC',
                       (month.first_day + interval '1 month')::timestamp AT TIME ZONE 'UTC')
            INTO top;
        EXECUTE format('ALTER TABLE public.%I ADD CONSTRAINT %I CHECK (txid <= %s) NOT VALID',
                       month.part, month.part || '_closed', top);
        INSERT INTO outbox_closed_months (month, max_txid, closed_at)
        VALUES (month.first_day, top, now());
        closed := closed + 1;
    END LOOP;
    RETURN closed;
END $$
"""

# "Who read patient X" (app.audit.queries). GIN answers `death_ids @> ARRAY[x]`, but under
# row-level security PostgreSQL uses an index only for a condition whose operator is leakproof
# (else a row the policies refuse could be tested first), and no array operator is: the service's
# role would read every row of every month and test the policies on each. So the search runs
# here, as the owner, month by month from the newest (each month's partition read through its
# GIN index, past its unforced security), applying the same rule as the table's policy itself
# (the deaths' own policy still applies inside it), the filters and the cursor, and stops when
# it has the page. It returns keys only: the service reads the rows through the table, its
# policies and its query criteria, as any other. Without a lower time bound it starts the day
# before the death was recorded (rows about an id before its record existed, which only a
# request answered "not found" can leave, need `occurred_from`). `p_own_only`: only the rows of
# the caller's organisations (a reader searching for a patient it may not see).
AUDIT_NAMING = r"""
CREATE OR REPLACE FUNCTION lfd_audit_naming(
    p_death uuid, p_limit integer, p_from timestamptz, p_before timestamptz,
    p_after_at timestamptz, p_after_id uuid, p_client uuid, p_resource_type text,
    p_resource uuid, p_action text, p_outcome text, p_query_hash text, p_own_only boolean)
RETURNS TABLE (id uuid, occurred_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public SET enable_indexscan = off AS $$
DECLARE
    month record;
    low timestamptz := p_from;
    high timestamptz := p_before;
    found integer := 0;
    got integer;
BEGIN
    IF p_limit IS NULL OR p_limit < 1 OR p_limit > 1001 THEN
        RAISE EXCEPTION 'lfd_audit_naming: limit % is out of range (1 to 1001)', p_limit;
    END IF;
    IF low IS NULL THEN
        SELECT d.created_at - interval '1 day' INTO low FROM deaths d WHERE d.id = p_death;
    END IF;
    IF p_after_at IS NOT NULL AND (high IS NULL OR p_after_at < high) THEN
        high := p_after_at + interval '1 microsecond';
    END IF;
    FOR month IN
        SELECT c.relname AS part,
               to_date(substring(c.relname from '_p(\d{4}_\d{2})$'), 'YYYY_MM') AS first_day
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'public.audit_events'::regclass
        ORDER BY 2 DESC
    LOOP
        CONTINUE WHEN high IS NOT NULL
            AND month.first_day::timestamp AT TIME ZONE 'UTC' >= high;
        EXIT WHEN low IS NOT NULL
            AND (month.first_day + interval '1 month')::timestamp AT TIME ZONE 'UTC' <= low;
        RETURN QUERY EXECUTE format(
            'SELECT a.id, a.occurred_at FROM public.%I a'
            ' WHERE a.death_ids @> ARRAY[$1]'
            ' AND ($2::timestamptz IS NULL OR a.occurred_at >= $2)'
            ' AND ($3::timestamptz IS NULL OR a.occurred_at < $3)'
            ' AND ($4::timestamptz IS NULL OR a.occurred_at < $4'
            '      OR (a.occurred_at = $4 AND a.id < $5))'
            ' AND ($6::uuid IS NULL OR a.client_id = $6)'
            ' AND ($7::text IS NULL OR a.resource_type = $7)'
            ' AND ($8::uuid IS NULL OR a.resource_id = $8)'
            ' AND ($9::text IS NULL OR a.action = $9)'
            ' AND ($10::text IS NULL OR a.outcome = $10)'
            ' AND ($11::text IS NULL OR a.query_hash = $11)'
            ' AND (NOT $13 OR a.organisation_id = ANY ((SELECT lfd_scope_organisations())::uuid[]))'
            ' AND ((SELECT lfd_scope_all())'
            '      OR a.organisation_id = ANY ((SELECT lfd_scope_organisations())::uuid[])'
            '      OR EXISTS (SELECT 1 FROM deaths d WHERE d.id = ANY (a.death_ids)'
            '          AND d.organisation_id = ANY ((SELECT lfd_scope_organisations())::uuid[])'
            '          OFFSET 0))'
            ' ORDER BY a.occurred_at DESC, a.id DESC LIMIT $12', month.part)
        USING p_death, low, p_before, p_after_at, p_after_id, p_client, p_resource_type,
              p_resource, p_action, p_outcome, p_query_hash, p_limit - found, p_own_only;
        GET DIAGNOSTICS got = ROW_COUNT;
        found := found + got;
        EXIT WHEN found >= p_limit;
    END LOOP;
END $$
"""

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.chain_seq IS NULL AND NEW.chain_seq IS NOT NULL AND NEW.chain_hash IS NOT NULL
       AND (to_jsonb(NEW) - 'chain_seq' - 'chain_hash')
           = (to_jsonb(OLD) - 'chain_seq' - 'chain_hash')
    THEN
        RETURN NEW;  -- the sealer placing a row in the chain, and changing nothing else
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$
"""
APPEND_ONLY_0012 = """
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.chain_seq IS NULL AND NEW.chain_seq IS NOT NULL AND NEW.chain_hash IS NOT NULL
       AND (NEW.id, NEW.occurred_at, NEW.client_id, NEW.client_name, NEW.on_behalf_of,
            NEW.action, NEW.resource_type, NEW.resource_id, NEW.death_id, NEW.request_id,
            NEW.outcome, NEW.query_hash, NEW.row_hash)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.occurred_at, OLD.client_id, OLD.client_name, OLD.on_behalf_of,
            OLD.action, OLD.resource_type, OLD.resource_id, OLD.death_id, OLD.request_id,
            OLD.outcome, OLD.query_hash, OLD.row_hash)
    THEN
        RETURN NEW;  -- the sealer placing a row in the chain
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$
"""
# The head moves forward; its start moves forward too, but only for the tables' owner (the
# retention step, which drops the months before it), and never past the head.
HEAD_FORWARD_ONLY = """
CREATE OR REPLACE FUNCTION audit_chain_heads_forward_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.name = OLD.name AND NEW.last_seq >= OLD.last_seq
       AND ((NEW.start_seq = OLD.start_seq AND NEW.start_hash = OLD.start_hash)
            OR (NEW.start_seq > OLD.start_seq AND NEW.start_seq <= NEW.last_seq
                AND pg_has_role(current_user,
                                (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER')))
    THEN
        RETURN NEW;  -- the sealer moving the head on, or retention moving the start on
    END IF;
    RAISE EXCEPTION 'audit_chain_heads only moves forward: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$
"""
HEAD_FORWARD_ONLY_0012 = """
CREATE OR REPLACE FUNCTION audit_chain_heads_forward_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.name = OLD.name AND NEW.last_seq >= OLD.last_seq
       AND NEW.start_seq = OLD.start_seq AND NEW.start_hash = OLD.start_hash
    THEN
        RETURN NEW;  -- the sealer moving the head on
    END IF;
    RAISE EXCEPTION 'audit_chain_heads only moves forward: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$
"""


def _index(table: str, name: str, columns: list[str], where: str | None, using: str | None) -> None:
    op.create_index(
        name,
        table,
        columns,
        postgresql_where=sa.text(where) if where else None,
        postgresql_using=using,
    )


def _policies(table: str, rule: str) -> None:
    condition = f"{SCOPE_ALL} OR {rule}"
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY lfd_scope ON {table} USING ({condition}) WITH CHECK ({condition})")


def _closed_months_table() -> None:
    op.create_table(
        "outbox_closed_months",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("max_txid", sa.BigInteger(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("month", name=op.f("pk_outbox_closed_months")),
    )


def _upgrade_postgresql() -> None:
    bind = op.get_bind()
    for table in ("audit_events", "outbox_events"):
        op.execute(f"ALTER TABLE {table} RENAME TO {table}_0021")
        op.execute(f"ALTER TABLE {table}_0021 RENAME CONSTRAINT pk_{table} TO pk_{table}_0021")
        for (name,) in bind.execute(
            sa.text(
                "SELECT indexname FROM pg_indexes WHERE tablename = :table"
                " AND indexname NOT LIKE 'pk_%'"
            ),
            {"table": f"{table}_0021"},
        ).all():
            op.execute(f"DROP INDEX {name}")
    op.execute("ALTER SEQUENCE outbox_events_seq_seq RENAME TO outbox_events_0021_seq_seq")
    op.execute(CREATE_AUDIT)
    op.execute(CREATE_EVENTS)
    op.execute("CREATE TABLE outbox_events_default PARTITION OF outbox_events DEFAULT")
    op.execute("ALTER TABLE outbox_events_default ENABLE ROW LEVEL SECURITY")
    _closed_months_table()
    for function in (MAKE_PARTITION, ENSURE_PARTITIONS, CLOSE_EVENT_MONTHS, AUDIT_NAMING):
        op.execute(function)
    # Every month of the rows already written, to three months ahead of this one.
    this_month = datetime.now(UTC).date().replace(day=1)
    for table in ("audit_events", "outbox_events"):
        first = bind.scalar(sa.text(f"SELECT min(occurred_at) FROM {table}_0021"))  # noqa: S608
        start = (
            min(this_month, first.astimezone(UTC).date().replace(day=1)) if first else this_month
        )
        months = (this_month.year - start.year) * 12 + this_month.month - start.month + AHEAD
        bind.execute(
            sa.text("SELECT lfd_ensure_partitions(:table, :start, :months)"),
            {"table": table, "start": start, "months": months},
        )
    op.execute(
        f"INSERT INTO audit_events ({AUDIT_COLUMNS}, death_ids)"  # noqa: S608
        f" SELECT {AUDIT_COLUMNS},"
        " CASE WHEN death_id IS NULL THEN '{}'::uuid[] ELSE ARRAY[death_id] END"
        " FROM audit_events_0021"
    )
    op.execute(
        f"INSERT INTO outbox_events ({EVENT_COLUMNS})"  # noqa: S608
        f" SELECT {EVENT_COLUMNS} FROM outbox_events_0021"
    )
    op.execute(
        "SELECT setval(pg_get_serial_sequence('outbox_events', 'seq'),"
        " coalesce(max(seq), 0) + 1, false) FROM outbox_events"
    )
    op.execute("DROP TABLE audit_events_0021")
    op.execute("DROP TABLE outbox_events_0021")
    for name, columns, where, using in AUDIT_INDEXES:
        _index("audit_events", name, columns, where, using)
    for name, columns, where, using in EVENT_INDEXES:
        _index("outbox_events", name, columns, where, using)
    _policies("audit_events", AUDIT_RULE)
    # An audit row is always written, whoever acts (0019): only reading them is confined.
    op.execute("CREATE POLICY lfd_audit_written ON audit_events FOR INSERT WITH CHECK (true)")
    _policies("outbox_events", EVENT_RULE)
    op.execute(APPEND_ONLY)
    op.execute(
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events"
        " FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events"
        " FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
    )
    op.execute(HEAD_FORWARD_ONLY)


def _downgrade_postgresql() -> None:
    bind = op.get_bind()
    several = bind.scalar(
        sa.text("SELECT count(*) FROM audit_events WHERE cardinality(death_ids) > 1")
    )
    if several:
        raise RuntimeError(
            f"cannot downgrade below 0025: {several} audit rows name several patients (one row"
            " per page), which one death_id column cannot hold without breaking their hashes"
        )
    op.execute(HEAD_FORWARD_ONLY_0012)
    for table in ("audit_events", "outbox_events"):
        op.execute(f"ALTER TABLE {table} RENAME TO {table}_0025")
        op.execute(f"ALTER TABLE {table}_0025 RENAME CONSTRAINT pk_{table} TO pk_{table}_0025")
        for (name,) in bind.execute(
            sa.text(
                "SELECT indexname FROM pg_indexes WHERE tablename = :table"
                " AND indexname NOT LIKE 'pk_%'"
            ),
            {"table": f"{table}_0025"},
        ).all():
            op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute("ALTER SEQUENCE outbox_events_seq_seq RENAME TO outbox_events_0025_seq_seq")
    op.execute(
        CREATE_AUDIT.replace("death_ids uuid[] NOT NULL", "death_id uuid")
        .replace("PRIMARY KEY (id, occurred_at)", "PRIMARY KEY (id)")
        .replace("PARTITION BY RANGE (occurred_at)", "")
    )
    op.execute(
        CREATE_EVENTS.replace("PRIMARY KEY (id, occurred_at)", "PRIMARY KEY (id)").replace(
            "PARTITION BY RANGE (occurred_at)", ""
        )
    )
    op.execute(
        f"INSERT INTO audit_events ({AUDIT_COLUMNS}, death_id)"  # noqa: S608
        f" SELECT {AUDIT_COLUMNS}, death_ids[1] FROM audit_events_0025"
    )
    op.execute(
        f"INSERT INTO outbox_events ({EVENT_COLUMNS})"  # noqa: S608
        f" SELECT {EVENT_COLUMNS} FROM outbox_events_0025"
    )
    op.execute(
        "SELECT setval(pg_get_serial_sequence('outbox_events', 'seq'),"
        " coalesce(max(seq), 0) + 1, false) FROM outbox_events"
    )
    op.execute("DROP TABLE audit_events_0025")
    op.execute("DROP TABLE outbox_events_0025")
    op.execute(
        "DROP FUNCTION lfd_audit_naming(uuid, integer, timestamptz, timestamptz, timestamptz,"
        " uuid, uuid, text, uuid, text, text, text, boolean)"
    )
    op.execute("DROP FUNCTION lfd_close_event_months(timestamptz)")
    op.execute("DROP FUNCTION lfd_ensure_partitions(text, date, integer)")
    op.execute("DROP FUNCTION lfd_make_partition(text, date)")
    op.drop_table("outbox_closed_months")
    for name, columns, where, using in AUDIT_INDEXES:
        if name == "ix_audit_events_death_ids":
            continue
        _index("audit_events", name, columns, where, using)
    op.create_index(
        "ix_audit_events_death_id_occurred_at", "audit_events", ["death_id", "occurred_at"]
    )
    op.drop_index("ix_audit_events_chain_seq", table_name="audit_events")
    op.create_index("ix_audit_events_chain_seq", "audit_events", ["chain_seq"], unique=True)
    for name, columns, where, using in EVENT_INDEXES:
        _index("outbox_events", name, columns, where, using)
    op.drop_index("ix_outbox_events_position", table_name="outbox_events")
    op.create_index("ix_outbox_events_position", "outbox_events", ["txid", "seq"], unique=True)
    _policies("audit_events", AUDIT_RULE_0021)
    op.execute("CREATE POLICY lfd_audit_written ON audit_events FOR INSERT WITH CHECK (true)")
    _policies("outbox_events", EVENT_RULE)
    op.execute(APPEND_ONLY_0012)
    op.execute(
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events"
        " FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events"
        " FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
    )


def _upgrade_sqlite() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("death_ids", sa.JSON(), nullable=True))
    op.execute(
        "UPDATE audit_events SET death_ids = CASE WHEN death_id IS NULL THEN '[]'"
        " ELSE json_array(death_id) END"
    )
    with op.batch_alter_table("audit_events", recreate="always") as batch:
        batch.drop_index("ix_audit_events_death_id_occurred_at")
        batch.drop_index("ix_audit_events_chain_seq")
        batch.drop_column("death_id")
        batch.alter_column("death_ids", existing_type=sa.JSON(), nullable=False)
        batch.drop_constraint("pk_audit_events", type_="primary")
        batch.create_primary_key("pk_audit_events", ["id", "occurred_at"])
        batch.create_index("ix_audit_events_chain_seq", ["chain_seq"])
    with op.batch_alter_table("outbox_events", recreate="always") as batch:
        batch.drop_index("ix_outbox_events_position")
        batch.drop_constraint("pk_outbox_events", type_="primary")
        batch.create_primary_key("pk_outbox_events", ["id", "occurred_at"])
        batch.create_index("ix_outbox_events_position", ["txid", "seq"])
    _closed_months_table()


def _downgrade_sqlite() -> None:
    several = op.get_bind().scalar(
        sa.text("SELECT count(*) FROM audit_events WHERE json_array_length(death_ids) > 1")
    )
    if several:
        raise RuntimeError(
            f"cannot downgrade below 0025: {several} audit rows name several patients"
        )
    op.drop_table("outbox_closed_months")
    with op.batch_alter_table("outbox_events", recreate="always") as batch:
        batch.drop_index("ix_outbox_events_position")
        batch.drop_constraint("pk_outbox_events", type_="primary")
        batch.create_primary_key("pk_outbox_events", ["id"])
        batch.create_index("ix_outbox_events_position", ["txid", "seq"], unique=True)
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("death_id", sa.Uuid(), nullable=True))
    op.execute("UPDATE audit_events SET death_id = json_extract(death_ids, '$[0]')")
    with op.batch_alter_table("audit_events", recreate="always") as batch:
        batch.drop_index("ix_audit_events_chain_seq")
        batch.drop_column("death_ids")
        batch.drop_constraint("pk_audit_events", type_="primary")
        batch.create_primary_key("pk_audit_events", ["id"])
        batch.create_index("ix_audit_events_chain_seq", ["chain_seq"], unique=True)
        batch.create_index("ix_audit_events_death_id_occurred_at", ["death_id", "occurred_at"])


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
    else:
        _upgrade_sqlite()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _downgrade_postgresql()
    else:
        _downgrade_sqlite()
