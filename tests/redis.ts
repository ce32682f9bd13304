/**
 * Redis for the tests: a real `redis-server` of each test's own, on a free
 * port in a temporary directory, never a system service. The starter lives
 * in `bench/redis_server.ts` (the benchmark starts one too with
 * `--redis-server`); this module adds what tests need around it: the reason
 * to skip where `redis-server` is not installed, and a test that is skipped,
 * the reason printed and in its name, rather than passing silently.
 *
 * ```ts
 * redisTest("acknowledged writes survive a restart", async (redis) => {
 *   await redisCommand(redis.url, "SET", "k", "v");
 *   await redis.restart();
 * });
 * ```
 *
 * @module
 */

import { redisMissing, RedisServer } from "../bench/redis_server.ts";

export { redisCommand, type RedisReply, RedisServer } from "../bench/redis_server.ts";

/** Why the Redis tests cannot run here, or undefined when `redis-server` is installed. */
export const REDIS_UNAVAILABLE: string | undefined = await redisMissing();

/**
 * A test that runs only when `reason` is undefined; otherwise it is
 * ignored, with the reason in its name and printed once, so a machine
 * without what it needs shows it skipped, never passed.
 */
export function testUnless(reason: string | undefined, name: string, fn: () => Promise<void>): void {
  if (reason) console.log(`skipped: ${name}: ${reason}`);
  Deno.test({ name: reason ? `${name} (skipped: ${reason})` : name, ignore: reason !== undefined, fn });
}

/** A test with a fresh `redis-server` of its own, killed and its directory removed at the end. */
export function redisTest(name: string, fn: (redis: RedisServer) => Promise<void>): void {
  testUnless(REDIS_UNAVAILABLE, name, async () => {
    await using redis = await RedisServer.start();
    await fn(redis);
  });
}
