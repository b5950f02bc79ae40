-- group commit (docs/performance.md): many appends in one call and one transaction, each with its own outcome as if they ran one after another; no outcome raises, so no append needs a subtransaction
create function append_events_batch(
  p_tenants text[],
  p_stream_ids text[],
  p_expected_kinds text[],
  p_expected_versions bigint[],
  p_with_ids boolean[],
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
as $$
declare
  v_item int;
  v_events json;
  v_tenant text;
  v_stream_id text;
  v_count int;
  v_version bigint;
  v_created int;
  v_now timestamptz;
  v_found int;
  v_same_run boolean;
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
    from (select distinct u.tenant, u.stream_id
            from unnest(p_tenants, p_stream_ids) as u(tenant, stream_id)) as k
   order by k.tenant collate "C", k.stream_id collate "C"
  on conflict (tenant, stream_id) do update
    set version = s.version
    where false;
  get diagnostics v_created = row_count;

  -- taken once every stream is locked, so created_at never goes back within a stream (temporal reads use it)
  v_now := date_trunc('milliseconds', clock_timestamp());

  -- Each append in arrival order, seeing what the earlier ones wrote; a refused one writes nothing and
  -- returns its outcome, as append_events() would.
  for v_item, v_events in
    select r.ordinality::int, r.value
      from json_array_elements(p_events) with ordinality as r(value, ordinality)
  loop
    v_tenant := p_tenants[v_item];
    v_stream_id := p_stream_ids[v_item];
    v_count := json_array_length(v_events);

    if p_with_ids[v_item] then
      select count(*),
             bool_and(e.stream_id = v_stream_id)
               and count(distinct e.stream_version - r.ordinality) = 1
               and count(*) = v_count
        into v_found, v_same_run
        from json_array_elements(v_events) with ordinality as r(value, ordinality)
        join events e
          on e.tenant = v_tenant
         and e.event_id = (r.value ->> 'eventId')::uuid;
      if v_found > 0 then
        if v_same_run then
          return query
            select 'duplicate', null::bigint, min(e.stream_version), max(e.stream_version),
                   min(e.global_position), max(e.global_position)
              from events e
             where e.tenant = v_tenant
               and e.event_id in (select (value ->> 'eventId')::uuid from json_array_elements(v_events));
        else
          return query select 'duplicate-event-id', null::bigint, null::bigint, null::bigint, null::bigint, null::bigint;
        end if;
        continue;
      end if;
    end if;

    update streams s
       set version = s.version + v_count,
           updated_at = now()
     where s.tenant = v_tenant
       and s.stream_id = v_stream_id
       and case p_expected_kinds[v_item]
             when 'any' then true
             when 'exists' then s.version > 0
             when 'no_stream' then s.version = 0
             else s.version = p_expected_versions[v_item]
           end
    returning s.version into v_version;

    if v_version is null then
      return query
        select 'wrong-expected-version',
               (select s.version from streams s where s.tenant = v_tenant and s.stream_id = v_stream_id),
               null::bigint, null::bigint, null::bigint, null::bigint;
      continue;
    end if;

    return query
      with inserted as (
        insert into events (global_position, tenant, stream_id, category, stream_version, event_id, type, data, metadata, created_at)
        select nextval('events_global_position_seq'),
               v_tenant,
               v_stream_id,
               split_part(v_stream_id, '-', 1),
               v_version - v_count + r.ordinality,
               coalesce((r.value ->> 'eventId')::uuid, gen_random_uuid()),
               r.value ->> 'type',
               r.value -> 'data',
               coalesce(r.value -> 'metadata', '{}'::json),
               v_now
          from json_array_elements(v_events) with ordinality as r(value, ordinality)
        returning global_position
      )
      select 'appended', v_version, v_version - v_count + 1, v_version, min(i.global_position), max(i.global_position)
        from inserted i;
  end loop;

  if v_created > 0 then
    delete from streams s
     using unnest(p_tenants, p_stream_ids) as u(tenant, stream_id)
     where s.tenant = u.tenant
       and s.stream_id = u.stream_id
       and s.version = 0;
  end if;
end;
$$;
