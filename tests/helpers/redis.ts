/**
 * Redis for the tests: a real `redis-server` of each test's own, on a free
 * port in a temporary directory, never a system service. The starter lives
 * in `tools/redis_server.ts` (the benchmark starts one too with
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

import { redisMissing, RedisServer } from "../../tools/redis_server.ts";
import { testUnless } from "./programs.ts";

export { redisCommand, type RedisReply, RedisServer } from "../../tools/redis_server.ts";
export { testUnless };

/** Why the Redis tests cannot run here, or undefined when `redis-server` is installed. */
export const REDIS_UNAVAILABLE: string | undefined = await redisMissing();

/** A test with a fresh `redis-server` of its own, killed and its directory removed at the end. */
export function redisTest(name: string, fn: (redis: RedisServer) => Promise<void>): void {
  testUnless(REDIS_UNAVAILABLE, name, async () => {
    await using redis = await RedisServer.start();
    await fn(redis);
  });
}
