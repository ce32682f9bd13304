/**
 * The whole library, for the tests and the benchmark: the table of contents
 * (`deps.ts`) and the host's side (`host.ts`).
 *
 * @module
 */

export * from "../deps.ts";
export * from "./host.ts";
