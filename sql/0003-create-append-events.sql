-- one round trip per append: idempotency check, expected-version check, stream head bump and event insert in one function
create function append_events(
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

  if exists (select from json_array_elements(p_events) as r(value) where r.value ->> 'eventId' is not null) then
    select count(*),
           bool_and(e.stream_id = p_stream_id)
             and count(distinct e.stream_version - r.ordinality) = 1
             and count(*) = v_count
      into v_found, v_same_run
      from json_array_elements(p_events) with ordinality as r(value, ordinality)
      join events e
        on e.tenant = p_tenant
       and e.event_id = (r.value ->> 'eventId')::uuid;
    if v_found > 0 then
      if v_same_run then
        return query
          select 'duplicate', null::bigint, min(e.stream_version), max(e.stream_version),
                 min(e.global_position), max(e.global_position)
            from events e
           where e.tenant = p_tenant
             and e.event_id in (select (value ->> 'eventId')::uuid from json_array_elements(p_events));
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
             coalesce((r.value ->> 'eventId')::uuid, gen_random_uuid()),
             r.value ->> 'type',
             r.value -> 'data',
             coalesce(r.value -> 'metadata', '{}'::json),
             v_now
        from json_array_elements(p_events) with ordinality as r(value, ordinality)
      returning global_position
    )
    select 'appended', v_version, v_version - v_count + 1, v_version, min(i.global_position), max(i.global_position)
      from inserted i;
end;
$$;
