/**
 * Keeping secrets out of everything Loom writes or prints. A provider's error message may quote
 * the key it was given (some APIs echo part of it back); the core scrubs every message that
 * reaches an output file, an event, a log line or the terminal.
 *
 * What is scrubbed is what is sent: keys are trimmed before use, so their trimmed value is the
 * secret. The rule by length:
 * - 8 characters or more: every occurrence, wherever it is.
 * - shorter, and known to be a key (`--api-key`, or the key a run resolved): only where it stands
 *   as a whole token (not inside a longer run of letters, digits, `_` or `-`), so that a dummy key
 *   such as `x` hides `key 'x'` but not `x-ray` or `max`. A 1–3 character key still hides that
 *   word wherever it stands alone in Loom's messages (never in the answers): the price of never
 *   printing a key that was sent.
 * - shorter, from a secret-looking environment variable that is not the run's key: not scrubbed,
 *   since flags such as `SOME_TOKEN=1` would blank every "1".
 * @module
 */

/** Environment variables whose values are treated as secrets. */
const SECRET_NAME = /(API_?KEY|TOKEN|SECRET|PASSWORD|CREDENTIALS?)$/i;
/** Secrets at least this long are scrubbed everywhere; shorter keys only as whole tokens. */
const MIN_SECRET_LENGTH = 8;
/** Characters a key token is made of; a short key next to one of them is part of another word. */
const TOKEN_CHAR = "A-Za-z0-9_\\-";

/**
 * The secrets of a run, as sent (trimmed): every secret-looking environment variable of at least
 * 8 characters, and the given keys (the `--api-key` value, the key the run resolved) at any
 * length. Longest first, so a secret that contains another is replaced whole.
 */
export function collectSecrets(
  env: Readonly<Record<string, string | undefined>>,
  ...keys: readonly (string | undefined)[]
): string[] {
  const fromEnv = Object.entries(env)
    .filter(([name, value]) => SECRET_NAME.test(name) && value !== undefined)
    .map(([, value]) => (value as string).trim())
    .filter((v) => v.length >= MIN_SECRET_LENGTH);
  const sent = [...keys, ...urlPasswords(env.LOOM_STATE)].map((k) => k?.trim() ?? "").filter((k) =>
    k !== ""
  );
  return [...new Set([...fromEnv, ...sent])].sort((a, b) => b.length - a.length);
}

/** The password of a URL such as the state store's (`LOOM_STATE`), as written and decoded. */
export function urlPasswords(url: string | undefined): string[] {
  const password = /^[a-z][a-z0-9+.-]*:\/\/[^/@:]*:([^/@]*)@/i.exec(url ?? "")?.[1];
  if (!password) return [];
  let decoded = password;
  try {
    decoded = decodeURIComponent(password);
  } catch {
    // Not percent-encoded as it should be: the password as written is all there is.
  }
  return [password, decoded];
}

/** Replaces every occurrence of a secret in text. */
export type Redactor = (text: string) => string;

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** A redactor for a fixed set of secrets (see the module's rule for short ones). */
export function createRedactor(secrets: readonly string[]): Redactor {
  if (secrets.length === 0) return (text) => text;
  const replacers = secrets.map((secret): Redactor => {
    if (secret.length >= MIN_SECRET_LENGTH) return (text) => text.split(secret).join("[redacted]");
    const token = new RegExp(`(?<![${TOKEN_CHAR}])${escapeRegExp(secret)}(?![${TOKEN_CHAR}])`, "g");
    return (text) => text.replace(token, "[redacted]");
  });
  return (text) => replacers.reduce((out, replace) => replace(out), text);
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
