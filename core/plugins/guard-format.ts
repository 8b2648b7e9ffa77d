/**
 * A third-party format's own failures, named. A format reports bad input with `LoomDataError`; any
 * other error thrown while it reads or writes is a bug of the plugin, which Loom would otherwise
 * print as "unexpected error" with a stack trace that names neither the plugin nor what to do.
 * Errors that only pass through the format (a read of the file that failed, the rows Loom hands to
 * `write` failing, an interrupt) are Loom's and go up as they are.
 * @module
 */
import { errorMessage, LoomError, LoomPluginError } from "../base/errors.ts";
import type { DatasetReader, FormatV1 } from "../spec/format.ts";

/** `format`, with the errors it raises itself turned into a `LoomPluginError` naming `label`. */
export function guardFormat(format: FormatV1, label: string): FormatV1 {
  /** Errors that came from what Loom handed the format: never the format's. */
  const passing = new WeakSet<object>();
  const own = (error: unknown) =>
    LoomError.isInstance(error) ||
      (typeof error === "object" && error !== null && passing.has(error))
      ? error
      : new LoomPluginError(
        `format ${label} failed: ${errorMessage(error)} (a format reports bad input with ` +
          "LoomDataError from loom-batch/plugin, naming the file and line)",
        { cause: error },
      );
  /** Marks what `items` throws as passing through. */
  async function* source<T>(items: AsyncIterable<T>): AsyncGenerator<T> {
    try {
      yield* items;
    } catch (error) {
      if (typeof error === "object" && error !== null) passing.add(error);
      throw error;
    }
  }
  /** The items `make` gives, with the format's own errors named (a `return()` is passed on). */
  async function* guarded<T>(make: () => AsyncIterable<T>): AsyncGenerator<T> {
    try {
      yield* make();
    } catch (error) {
      throw own(error);
    }
  }
  // The instance stays the prototype: its fields, and methods that use `this`, work as they were.
  const wrapped: FormatV1 = Object.create(format);
  Object.assign(
    wrapped,
    {
      async open(input, options) {
        let reader: DatasetReader;
        try {
          reader = await format.open(source(input), options);
        } catch (error) {
          throw own(error);
        }
        const chunks = reader.rowChunks?.bind(reader);
        return {
          // Read through: a reader may settle its layout as it reads.
          get layout() {
            return reader.layout;
          },
          rows: guarded(() => reader.rows),
          ...(chunks ? { rowChunks: () => guarded(chunks) } : {}),
        };
      },
      write: (rows, options) => guarded(() => format.write(source(rows), options)),
      ...(format.writeChunks
        ? {
          writeChunks: (rows, options) => guarded(() => format.writeChunks!(source(rows), options)),
        }
        : {}),
    } satisfies Pick<FormatV1, "open" | "write" | "writeChunks">,
  );
  return wrapped;
}
