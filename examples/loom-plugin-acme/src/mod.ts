/**
 * `loom-plugin-acme`: an example Loom plugin package. It adds two plugins, the `acme` provider
 * (an OpenAI-compatible chat completions endpoint, called with `fetch`) and the `ltsv` format.
 * A job loads both with `plugins: [loom-plugin-acme]`.
 * @module
 */
import { acme } from "./provider.ts";
import { ltsv } from "./ltsv.ts";

export { acme, ltsv };
export default [acme, ltsv];
