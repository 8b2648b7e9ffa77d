/**
 * Page sizes of a store's paged reads whose values vary in size: a batch's saved results are one
 * outcome a row or a run of dozens (`core/batch/saved-results.ts`). A page of a fixed number of
 * rows was either many statements for small values or tens of megabytes for large ones, alive long
 * enough to be promoted to the old generation; a page of about a fixed number of characters is
 * neither.
 * @module
 */

/** The number of rows to ask for in each page of one read. */
export class PageSize {
  readonly #max: number;
  readonly #chars: number;
  /** Rows to ask for in the next page. */
  rows: number;

  /** Pages of at most `maxRows` rows and about `chars` characters of values. */
  constructor(maxRows: number, chars: number) {
    this.#max = maxRows;
    this.#chars = chars;
    this.rows = maxRows;
  }

  /** Sizes the next page from the last, whose `count` values held `chars` characters in all. */
  after(count: number, chars: number): void {
    if (count === 0) return;
    this.rows = Math.max(
      1,
      Math.min(this.#max, Math.floor(this.#chars / Math.max(1, chars / count))),
    );
  }
}
