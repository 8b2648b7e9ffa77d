/**
 * Keeping secrets out of everything Loom writes or prints. A provider's error message may quote
 * the key it was given (some APIs echo part of it back); the core scrubs every message that
 * reaches an output file, an event, a log line or the terminal.
 * @module
 */

/** Environment variables whose values are treated as secrets. */
const SECRET_NAME = /(API_?KEY|TOKEN|SECRET|PASSWORD|CREDENTIALS?)$/i;
/** Shorter values are not scrubbed: they would match ordinary text. */
const MIN_SECRET_LENGTH = 8;

/** The secrets of a run: the `--api-key` value and every secret-looking environment variable. */
export function collectSecrets(env: Readonly<Record<string, string | undefined>>, apiKey?: string): string[] {
  const values = Object.entries(env)
    .filter(([name, value]) => SECRET_NAME.test(name) && value !== undefined)
    .map(([, value]) => value as string);
  if (apiKey !== undefined) values.push(apiKey);
  // Longest first, so a key that contains another is replaced whole.
  return [...new Set(values.filter((v) => v.length >= MIN_SECRET_LENGTH))].sort((a, b) => b.length - a.length);
}

/** Replaces every occurrence of a secret in text. */
export type Redactor = (text: string) => string;

/** A redactor for a fixed set of secrets. */
export function createRedactor(secrets: readonly string[]): Redactor {
  if (secrets.length === 0) return (text) => text;
  return (text) => {
    let out = text;
    for (const secret of secrets) out = out.split(secret).join("[redacted]");
    return out;
  };
}

/** Scrubs an error's message (and its cause's) in place and returns it. */
export function redactError<E>(error: E, redact: Redactor): E {
  let e: unknown = error;
  for (let depth = 0; e instanceof Error && depth < 5; depth++, e = e.cause) {
    e.message = redact(e.message);
    if (e.stack) e.stack = redact(e.stack);
  }
  return error;
}
