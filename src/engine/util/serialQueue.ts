// One caller at a time over something that must not run two operations at once (a host, a session, a cache's
// index): each task starts once every earlier one has settled, and a failed task does not stop the ones behind it.

/** Runs `task` after every task given earlier; resolves or rejects as `task` does. */
export type SerialQueue = <T>(task: () => Promise<T>) => Promise<T>;

export function serialQueue(): SerialQueue {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(task: () => Promise<T>) => {
    const run = tail.then(task, task);
    tail = run.catch(() => {});
    return run;
  };
}
