import type { Tx } from '../db/connect.js'

// The generation rows go before their documents: a batch of their worker still in flight holds its
// row (the checkpoint compare-and-set) and commits first, so none of its documents is left behind.
export const dropGenerations = async (tx: Tx, name: string, state: 'live' | 'building' | 'retired'): Promise<void> => {
  const dropped = await tx<{ generation: number }[]>`
    delete from projection_generations
     where projection = ${name} and state = ${state}
    returning generation`
  for (const { generation } of dropped) {
    await tx`delete from projection_documents where projection = ${name} and generation = ${generation}`
  }
}
