-- personal data is kept encrypted under one data key per tenant and subject, and forgotten by destroying that key (docs/personal-data.md)
create table subject_keys (
  tenant text collate "C" not null,
  subject text collate "C" not null,
  data_key bytea,
  -- 'none' (stored unwrapped: no ENCRYPTION_KEY) or the fingerprint of the master key that wraps it
  key_wrap text,
  created_at timestamptz not null default now(),
  forgotten_at timestamptz,
  constraint subject_keys_pkey primary key (tenant, subject),
  constraint subject_keys_destroyed_check check ((data_key is null) = (forgotten_at is not null))
);

-- the envelope's fields, moved out of metadata by events_take_personal_data(); both null for other events
alter table events
  add column subject text collate "C",
  add column personal_data bytea;

create index events_subject_idx
  on events (tenant, subject, global_position)
  where subject is not null;

-- the rebuilds a forget needs, one per projection; backfill is null until the run exists, so a forget cut short
-- between its steps is finished at the next start (src/subjects/forget-subject.ts)
create table subject_rebuilds (
  tenant text collate "C" not null,
  subject text collate "C" not null,
  projection text collate "C" not null,
  backfill uuid,
  created_at timestamptz not null default now(),
  constraint subject_rebuilds_pkey primary key (tenant, subject, projection),
  constraint subject_rebuilds_projection_fkey foreign key (projection) references projections (name) on delete cascade
);

create index subject_rebuilds_backfill_idx
  on subject_rebuilds (backfill);

-- append_events() and append_events_batch() stay as they are: an event with a subject reaches them with its subject,
-- ciphertext and metadata in one envelope as its metadata, which this trigger takes apart before the row is stored.
-- An append of personal data holds its subject's advisory lock shared (class 7316005, src/db/advisory-locks.ts) and a
-- forget takes it exclusively before destroying the key, so the two are ordered: the append commits first and is
-- counted and rebuilt, or it waits and then finds the key destroyed and fails. An advisory lock, not FOR SHARE on the
-- key row: appends of one subject would otherwise each write a lock (a MultiXact) into that row.
create function events_take_personal_data()
returns trigger
language plpgsql
as $$
declare
  v_envelope json := new.metadata -> '$annalist';
begin
  new.subject := v_envelope ->> 'subject';
  new.personal_data := decode(v_envelope ->> 'personalData', 'base64');
  new.metadata := coalesce(v_envelope -> 'metadata', '{}'::json);
  if new.personal_data is not null then
    perform pg_advisory_xact_lock_shared(7316005, hashtext(new.tenant || '/' || new.subject));
    perform
       from subject_keys k
      where k.tenant = new.tenant
        and k.subject = new.subject
        and k.forgotten_at is null;
    if not found then
      raise exception 'the subject of this personal data is forgotten'
        using errcode = '23514', constraint = 'events_subject_forgotten';
    end if;
  end if;
  return new;
end;
$$;

-- only events whose metadata text opens with the envelope call the function (src/events/personal-envelope.ts):
-- every other insert pays one comparison of a short prefix
create trigger events_take_personal_data
  before insert on events
  for each row
  when (left(new.metadata::text, 14) = '{"$annalist":{')
  execute function events_take_personal_data();
