/** Where a paged walk stands: the primary key of the last row it saw. */
export interface WalkCursor {
  vaultId: string;
  nameLower: string;
}

/**
 * A background job's walk over rows in pages by primary key (vault id, lower-cased name), with
 * `visit` called on each. One row that fails does not stop the others (of any vault, any
 * tenant): the walk goes on, then reports every failure at once as an AggregateError (the job
 * runner logs it; the next run tries again). `label` names a row in that report.
 */
export async function walkPages<R extends WalkCursor>(
  page: (after: WalkCursor, size: number) => Promise<R[]>,
  pageSize: number,
  visit: (row: R) => Promise<void>,
  label: (row: R) => string,
  summary: (failed: number) => string,
): Promise<void> {
  let after: WalkCursor = { vaultId: '', nameLower: '' };
  const failed: Error[] = [];
  for (;;) {
    const rows = await page(after, pageSize);
    for (const row of rows) {
      try {
        await visit(row);
      } catch (e) {
        failed.push(new Error(label(row), { cause: e }));
      }
    }
    const last = rows[rows.length - 1];
    if (!last || rows.length < pageSize) break;
    after = { vaultId: last.vaultId, nameLower: last.nameLower };
  }
  if (failed.length > 0) throw new AggregateError(failed, summary(failed.length));
}
