/**
 * Cheap per-row fingerprints for `loom view`'s compare: a 32-bit hash of a row's answer and one of
 * its input columns, kept by the row index so that two 1M-row outputs are lined up by comparing
 * numbers instead of reading both files again. Equal hashes are taken as equal values (a false
 * match is one in four billion per row).
 * @module
 */

/** A 32-bit FNV-1a hash of `text`. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** A value as text: a string as it is, anything else as JSON (so CSV's "1" equals JSON's 1). */
function textOf(value: unknown): string {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** A row's answer as text: `llm_response` as written (a structured answer as JSON). */
export function answerText(fields: Record<string, unknown>): string {
  return textOf(fields.llm_response);
}

/** How many answers looking like JSON objects are tried for a structured answer's fields. */
const STRUCTURED_TRIES = 20;

/**
 * Hashes the rows of one output in file order. The input is every column that is not Loom's
 * (`llm_…`) and not a field of a structured answer (in CSV each field is a column of its own,
 * learned from the first answer that is a JSON object whose keys are columns); empty values are
 * left out, so a failed row's empty fields hash as a row without them.
 */
export class RowHasher {
  #answerFields = new Set<string>();
  #tries = 0;

  /** The hashes of one row's input and answer. */
  of(fields: Record<string, unknown>): { input: number; answer: number } {
    const answer = answerText(fields);
    if (this.#tries < STRUCTURED_TRIES && answer.startsWith("{") && !this.#answerFields.size) {
      this.#tries++;
      this.#learn(fields, answer);
    }
    let input = "";
    for (const key in fields) {
      if (key.startsWith("llm_") || this.#answerFields.has(key)) continue;
      const value = textOf(fields[key]);
      if (value !== "") input += `${key}\u0000${value}\u0001`;
    }
    return { input: hash32(input), answer: hash32(answer) };
  }

  #learn(fields: Record<string, unknown>, answer: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(answer);
    } catch {
      return;
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return;
    const keys = Object.keys(parsed);
    if (keys.length && keys.every((k) => k in fields)) this.#answerFields = new Set(keys);
  }
}
