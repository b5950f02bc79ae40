import { closeSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import path from 'node:path'

export const LOCK_FILE = 'annalist.pid'

export class FolderLockedError extends Error {}

// Two processes on one embedded data folder corrupt it, so the folder takes one owner at a time, as
// PostgreSQL's postmaster.pid does: the file names the owner's pid, and a file whose pid is dead (or is
// this very process, as after a restart in a container where pids repeat) is stale and taken over.
export const lockFolder = (dir: string): (() => void) => {
  const file = path.join(dir, LOCK_FILE)
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      const fd = openSync(file, 'wx')
      writeSync(fd, `${process.pid}\n`)
      closeSync(fd)
      return () => {
        if (ownerOf(file) === process.pid) unlinkSync(file)
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    const owner = ownerOf(file)
    if (owner !== undefined && owner !== process.pid && alive(owner)) {
      throw new FolderLockedError(`${path.resolve(dir)} is in use by process ${owner} (${file}); one server per DATA_DIR`)
    }
    // rename is atomic: of two processes clearing the same stale file, one succeeds and the other retries
    const stale = `${file}.stale-${process.pid}`
    try {
      renameSync(file, stale)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
      continue
    }
    const moved = ownerOf(stale)
    // another process took the folder between our read and our rename: give its file back
    if (moved !== owner && moved !== undefined && alive(moved)) {
      renameSync(stale, file)
      throw new FolderLockedError(`${path.resolve(dir)} is in use by process ${moved} (${file}); one server per DATA_DIR`)
    }
    unlinkSync(stale)
  }
  throw new FolderLockedError(`${path.resolve(dir)}: could not take ${file}`)
}

const ownerOf = (file: string): number | undefined => {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8'), 10)
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}
