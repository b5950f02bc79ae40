-- Pages and batches stop at MAX_PAGE_BYTES (SPEC "Details"): their size must be known without reading data.
-- The text length of a json value cannot be read from its TOAST pointer (json has no binary cast to text), so
-- measuring it at read time would decompress every row the page looks at. Kept here once, on insert instead.
-- Adding the column rewrites the table once.
alter table events
  add column event_bytes integer generated always as (
    octet_length(data::text) + octet_length(metadata::text) + octet_length(stream_id) + octet_length(type)
  ) stored;
