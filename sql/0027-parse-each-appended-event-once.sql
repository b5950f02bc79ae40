-- Each event's text was read over again for every field taken from it: `r.value ->> 'eventId'`, `->> 'type'`,
-- `-> 'data'` and `-> 'metadata'` on a json value each parse it from its start, and json_array_elements() parsed the
-- request's array once more, so an event's bytes went through the JSON lexer about six times (perf on a backend taking
-- batches of eight 10-event appends: a third of its CPU in pg_parse_json). json_to_recordset() takes all four fields
-- in one pass. A json field that holds an object, an array, a number or a literal comes out as the exact text sent
-- (spaces, key order, duplicate keys, digits and escapes kept), as `->` gave it; a string does not (json_to_record
-- writes it anew, e.g. "\ud83d\ude00" as the character itself), so data that is a string is taken with `->` as before
-- (test/fuzz/hostile-json.test.ts found it); a JSON null comes out as SQL null and is put back. Metadata is an object
-- or absent (the request schema). Nothing else changes: the functions of 0023, with the settings of 0026 repeated
-- (a CREATE OR REPLACE drops them otherwise). docs/performance.md "Each event parsed once".

-- append_events() of 0023
create or replace function append_events(
  p_tenant text,
  p_stream_id text,
  p_expected_kind text,
  p_expected_version bigint,
  p_events json
)
returns table (
  outcome text,
  current_version bigint,
  first_version bigint,
  last_version bigint,
  first_position bigint,
  last_position bigint
)
language plpgsql
set enable_hashjoin = off
set enable_mergejoin = off
as $$
declare
  v_count int := json_array_length(p_events);
  v_category text := split_part(p_stream_id, '-', 1);
  v_version bigint;
  v_now timestamptz;
  v_found int;
  v_same_run boolean;
begin
  -- gap safety: own an xid before taking positions, so a position is never held by a transaction
  -- younger than the snapshot that fences it (docs/gap-safety.md)
  perform pg_current_xact_id();

  if exists (select from json_to_recordset(p_events) as r("eventId" text) where r."eventId" is not null) then
    select count(*),
           bool_and(e.stream_id = p_stream_id)
             and count(distinct e.stream_version - r.ordinality) = 1
             and count(*) = v_count
      into v_found, v_same_run
      from rows from (json_to_recordset(p_events) as ("eventId" text)) with ordinality as r("eventId", ordinality)
      join events e
        on e.tenant = p_tenant
       and e.event_id = r."eventId"::uuid;
    if v_found > 0 then
      if v_same_run then
        return query
          select 'duplicate', null::bigint, min(e.stream_version), max(e.stream_version),
                 min(e.global_position), max(e.global_position)
            from events e
           where e.tenant = p_tenant
             and e.event_id in (select r."eventId"::uuid from json_to_recordset(p_events) as r("eventId" text));
      else
        return query select 'duplicate-event-id', null::bigint, null::bigint, null::bigint, null::bigint, null::bigint;
      end if;
      return;
    end if;
  end if;

  if p_expected_kind = 'any' then
    insert into streams as s (tenant, stream_id, category, version, created_at, updated_at)
    values (p_tenant, p_stream_id, v_category, v_count, now(), now())
    on conflict (tenant, stream_id) do update
      set version = s.version + v_count,
          updated_at = now()
    returning s.version into v_version;
  elsif p_expected_kind = 'no_stream' or p_expected_version = 0 then
    insert into streams (tenant, stream_id, category, version, created_at, updated_at)
    values (p_tenant, p_stream_id, v_category, v_count, now(), now())
    on conflict (tenant, stream_id) do nothing
    returning version into v_version;
  else
    update streams s
       set version = s.version + v_count,
           updated_at = now()
     where s.tenant = p_tenant
       and s.stream_id = p_stream_id
       and (p_expected_kind = 'exists' or s.version = p_expected_version)
    returning s.version into v_version;
  end if;

  if v_version is null then
    return query
      select 'wrong-expected-version',
             coalesce((select s.version from streams s where s.tenant = p_tenant and s.stream_id = p_stream_id), 0),
             null::bigint, null::bigint, null::bigint, null::bigint;
    return;
  end if;

  -- taken after the stream row lock, so created_at never goes back within a stream (temporal reads use it);
  -- millisecond precision so a createdAt read back compares exactly
  v_now := date_trunc('milliseconds', clock_timestamp());

  return query
    with inserted as (
      insert into events (global_position, tenant, stream_id, category, stream_version, event_id, type, data, metadata, created_at)
      select nextval('events_global_position_seq'),
             p_tenant,
             p_stream_id,
             v_category,
             v_version - v_count + r.ordinality,
             coalesce(r."eventId"::uuid, uuid_v7()),
             r.type,
             coalesce(case when json_typeof(r.data) = 'string' then p_events -> (r.ordinality::int - 1) -> 'data' else r.data end, 'null'::json),
             coalesce(r.metadata, '{}'::json),
             v_now
        from rows from (json_to_recordset(p_events) as ("eventId" text, type text, data json, metadata json))
               with ordinality as r("eventId", type, data, metadata, ordinality)
      returning global_position
    )
    select 'appended', v_version, v_version - v_count + 1, v_version, min(i.global_position), max(i.global_position)
      from inserted i;
end;
$$;

-- append_events_batch() of 0023
create or replace function append_events_batch(
  -- the batch's streams, each once
  p_tenants text[],
  p_stream_ids text[],
  -- per append, in arrival order: its stream (an index into the arrays above), its request (the appends of one
  -- request are adjacent and carry one number; a single append is a request of its own), expectation, how many
  -- events and how many of them came with an eventId
  p_streams int[],
  p_requests int[],
  p_expected_kinds text[],
  p_expected_versions bigint[],
  p_counts int[],
  p_id_counts int[],
  -- per append, its events: a JSON array of arrays. No two requests of a batch share an event id (the caller
  -- splits batches there), so what a request finds stored cannot depend on an earlier request of the batch.
  p_events json
)
returns table (
  outcome text,
  current_version bigint,
  first_version bigint,
  last_version bigint,
  first_position bigint,
  last_position bigint
)
language plpgsql
set enable_hashjoin = off
set enable_mergejoin = off
as $$
declare
  v_appends int := coalesce(array_length(p_streams, 1), 0);
  v_versions bigint[];
  v_created int;
  v_now timestamptz;
  v_first int := 1;
  v_last int;
  v_item int;
  v_stream int;
  v_current bigint;
  v_stored boolean;
  v_same_runs boolean;
  v_refused boolean;
  v_found record;
  v_positions bigint[];
  v_total int := 0;
  -- per append, its ids as found stored: how many, whether as one run of its stream in its order, and that run
  f_found int[] := array_fill(0, array[v_appends]);
  f_same_run boolean[] := array_fill(false, array[v_appends]);
  f_first_version bigint[] := array_fill(null::bigint, array[v_appends]);
  f_last_version bigint[] := array_fill(null::bigint, array[v_appends]);
  f_first_position bigint[] := array_fill(null::bigint, array[v_appends]);
  f_last_position bigint[] := array_fill(null::bigint, array[v_appends]);
  -- outcomes, per append
  o_outcome text[] := array_fill(null::text, array[v_appends]);
  o_current bigint[] := array_fill(null::bigint, array[v_appends]);
  o_first_version bigint[] := array_fill(null::bigint, array[v_appends]);
  o_last_version bigint[] := array_fill(null::bigint, array[v_appends]);
  o_first_position bigint[] := array_fill(null::bigint, array[v_appends]);
  o_last_position bigint[] := array_fill(null::bigint, array[v_appends]);
  -- where each written append's events start among the batch's new positions
  o_offset int[] := array_fill(null::int, array[v_appends]);
begin
  -- gap safety: own an xid before taking positions, so a position is never held by a transaction
  -- younger than the snapshot that fences it (docs/gap-safety.md)
  perform pg_current_xact_id();

  -- Every stream of the batch is locked first, in one order shared by every caller, so two batches over
  -- overlapping streams wait for each other but never deadlock. A stream that does not exist yet is locked
  -- by inserting it at version 0 (no committed stream is ever at 0); one still at 0 at the end is removed.
  -- Rows the where clause leaves alone are still locked (INSERT … ON CONFLICT DO UPDATE).
  insert into streams as s (tenant, stream_id, category, version, created_at, updated_at)
  select k.tenant, k.stream_id, split_part(k.stream_id, '-', 1), 0, now(), now()
    from unnest(p_tenants, p_stream_ids) as k(tenant, stream_id)
   order by k.tenant collate "C", k.stream_id collate "C"
  on conflict (tenant, stream_id) do update
    set version = s.version
    where false;
  get diagnostics v_created = row_count;

  -- taken once every stream is locked, so created_at never goes back within a stream (temporal reads use it)
  v_now := date_trunc('milliseconds', clock_timestamp());

  select array_agg(s.version order by k.n)
    into v_versions
    from unnest(p_tenants, p_stream_ids) with ordinality as k(tenant, stream_id, n)
    join streams s
      on s.tenant = k.tenant
     and s.stream_id = k.stream_id;

  -- Stored ids, per append: read after the locks, so a racer on the same stream has committed.
  if 0 < any(p_id_counts) then
    for v_found in
      select i.item::int as item,
             count(*)::int as found,
             bool_and(e.stream_id = p_stream_ids[p_streams[i.item]])
               and count(distinct e.stream_version - r.ordinality) = 1
               and count(*) = p_counts[i.item] as same_run,
             min(e.stream_version) as first_version,
             max(e.stream_version) as last_version,
             min(e.global_position) as first_position,
             max(e.global_position) as last_position
        from json_array_elements(p_events) with ordinality as i(value, item)
        cross join lateral rows from (json_to_recordset(i.value) as ("eventId" text)) with ordinality as r("eventId", ordinality)
        join events e
          on e.tenant = p_tenants[p_streams[i.item]]
         and e.event_id = r."eventId"::uuid
       where p_id_counts[i.item] > 0
       group by i.item
    loop
      f_found[v_found.item] := v_found.found;
      f_same_run[v_found.item] := v_found.same_run;
      f_first_version[v_found.item] := v_found.first_version;
      f_last_version[v_found.item] := v_found.last_version;
      f_first_position[v_found.item] := v_found.first_position;
      f_last_position[v_found.item] := v_found.last_position;
    end loop;
  end if;

  -- Requests in arrival order, each against the versions the earlier requests of the batch left.
  while v_first <= v_appends loop
    v_last := v_first;
    while v_last < v_appends and p_requests[v_last + 1] = p_requests[v_first] loop
      v_last := v_last + 1;
    end loop;

    -- Idempotency over the whole request, as append_events() for one append: with any of its ids stored, it
    -- is a duplicate when every append is stored whole as one run of its stream and the runs follow the
    -- request's order; otherwise it is refused.
    v_stored := false;
    v_same_runs := true;
    for v_item in v_first .. v_last loop
      v_stored := v_stored or f_found[v_item] > 0;
      v_same_runs := v_same_runs and f_same_run[v_item]
        and (v_item = v_first or f_first_position[v_item] > f_last_position[v_item - 1]);
    end loop;

    if v_stored then
      for v_item in v_first .. v_last loop
        if v_same_runs then
          o_outcome[v_item] := 'duplicate';
          o_first_version[v_item] := f_first_version[v_item];
          o_last_version[v_item] := f_last_version[v_item];
          o_first_position[v_item] := f_first_position[v_item];
          o_last_position[v_item] := f_last_position[v_item];
        else
          o_outcome[v_item] := 'duplicate-event-id';
        end if;
      end loop;
    else
      -- every expectation of the request first: one that fails refuses them all (a stream is in a request once)
      v_refused := false;
      for v_item in v_first .. v_last loop
        v_current := v_versions[p_streams[v_item]];
        o_current[v_item] := v_current;
        if not (case p_expected_kinds[v_item]
                  when 'any' then true
                  when 'exists' then v_current > 0
                  when 'no_stream' then v_current = 0
                  else v_current = p_expected_versions[v_item]
                end) then
          o_outcome[v_item] := 'wrong-expected-version';
          v_refused := true;
        end if;
      end loop;

      for v_item in v_first .. v_last loop
        if v_refused then
          -- written with its request or not at all: another append of the request failed its expectation
          o_outcome[v_item] := coalesce(o_outcome[v_item], 'not-written');
        else
          v_stream := p_streams[v_item];
          v_current := v_versions[v_stream];
          o_outcome[v_item] := 'appended';
          o_first_version[v_item] := v_current + 1;
          o_last_version[v_item] := v_current + p_counts[v_item];
          o_current[v_item] := v_current + p_counts[v_item];
          o_offset[v_item] := v_total;
          v_versions[v_stream] := v_current + p_counts[v_item];
          v_total := v_total + p_counts[v_item];
        end if;
      end loop;
    end if;

    v_first := v_last + 1;
  end loop;

  if v_total > 0 then
    -- positions in arrival order, then events in order within each append
    v_positions := array(select nextval('events_global_position_seq') from generate_series(1, v_total));

    insert into events (global_position, tenant, stream_id, category, stream_version, event_id, type, data, metadata, created_at)
    select v_positions[o_offset[i.item] + r.ordinality],
           p_tenants[p_streams[i.item]],
           p_stream_ids[p_streams[i.item]],
           split_part(p_stream_ids[p_streams[i.item]], '-', 1),
           o_first_version[i.item] + r.ordinality - 1,
           coalesce(r."eventId"::uuid, uuid_v7()),
           r.type,
           coalesce(case when json_typeof(r.data) = 'string' then i.value -> (r.ordinality::int - 1) -> 'data' else r.data end, 'null'::json),
           coalesce(r.metadata, '{}'::json),
           v_now
      from json_array_elements(p_events) with ordinality as i(value, item)
      cross join lateral rows from (json_to_recordset(i.value) as ("eventId" text, type text, data json, metadata json))
             with ordinality as r("eventId", type, data, metadata, ordinality)
     where o_outcome[i.item] = 'appended';

    update streams s
       set version = v.version,
           updated_at = now()
      from unnest(p_tenants, p_stream_ids, v_versions) as v(tenant, stream_id, version)
     where s.tenant = v.tenant
       and s.stream_id = v.stream_id
       and s.version <> v.version;
  end if;

  if v_created > 0 and 0 = any(v_versions) then
    delete from streams s
     using unnest(p_tenants, p_stream_ids) as k(tenant, stream_id)
     where s.tenant = k.tenant
       and s.stream_id = k.stream_id
       and s.version = 0;
  end if;

  return query
    select o_outcome[n],
           o_current[n],
           o_first_version[n],
           o_last_version[n],
           case when o_outcome[n] = 'appended' then v_positions[o_offset[n] + 1] else o_first_position[n] end,
           case when o_outcome[n] = 'appended' then v_positions[o_offset[n] + p_counts[n]] else o_last_position[n] end
      from generate_series(1, v_appends) as n;
end;
$$;
