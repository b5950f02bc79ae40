// The NOTIFY channels the instances of one database talk on.
export const CHANNEL = {
  // events were appended: readers of the log look at the head (src/subscriptions/log-watcher.ts)
  log: 'annalist_log',
  // projection definitions or statuses changed: runners reconcile (src/projections/runner.ts)
  projections: 'annalist_projections',
  // a projection batch committed, payload the projection's name: waitFor readers look (src/projections/progress.ts)
  progress: 'annalist_projection_progress',
  // an upcaster changed, payload its event type (src/events/upcasters.ts)
  upcasters: 'annalist_upcasters',
  // a subject was forgotten, payload [tenant, subject]: its cached data key goes (src/events/keyring.ts)
  subjects: 'annalist_subjects',
  // an ack, nack or replay freed work while a poll waited, payload tenant/name: waiting polls look
  // (src/consumer-groups/consumer-groups.ts; sent by sql/0022 consumer_group_ack and by settle.ts, parked.ts)
  consumerGroups: 'annalist_consumer_groups',
} as const
