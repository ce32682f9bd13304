/**
 * The Redis the tests and the benchmark start (`tests/helpers/redis.ts`,
 * `tools/redis_server.ts`): a real `redis-server` on a free port in a
 * temporary directory, with the durable settings, that keeps acknowledged
 * writes across a restart and a kill, and leaves nothing behind.
 *
 * @module
 */

import assert from "node:assert/strict";
import { parseRedisUrl } from "../../tools/redis_server.ts";
import { redisCommand, RedisServer, redisTest } from "../helpers/redis.ts";

/** Whether `path` exists. */
async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, (error) => {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  });
}

redisTest(
  "a redis-server of our own: on loopback, a free port, durable settings, SET and GET",
  async (redis) => {
    assert.equal(redis.url, `redis://127.0.0.1:${redis.port}`);
    assert.deepEqual(parseRedisUrl(`${redis.url}/3`), { host: "127.0.0.1", port: redis.port, db: 3 });
    const config = async (name: string) =>
      ((await redisCommand(redis.url, "CONFIG", "GET", name)) as string[])[1];
    assert.equal(await config("appendonly"), "yes");
    assert.equal(await config("appendfsync"), "always");
    assert.equal(await config("save"), "", "no snapshots");
    assert.equal(await config("bind"), "127.0.0.1");
    assert.equal(await config("dir"), await Deno.realPath(redis.dir));
    assert.equal(await redisCommand(redis.url, "SET", "chave", "valor é ✓"), "OK");
    assert.equal(await redisCommand(redis.url, "GET", "chave"), "valor é ✓");
    assert.equal(await redisCommand(redis.url, "GET", "nenhuma"), null);
    assert.equal(await redisCommand(redis.url, "RPUSH", "lista", "a", "b"), 2);
    assert.deepEqual(await redisCommand(redis.url, "LRANGE", "lista", 0, -1), ["a", "b"]);
    // A database of the URL is selected first; a large bulk reply arrives in several reads.
    assert.equal(await redisCommand(`${redis.url}/2`, "GET", "chave"), null);
    await redisCommand(`${redis.url}/2`, "SET", "grande", "x".repeat(300_000));
    assert.equal(((await redisCommand(`${redis.url}/2`, "GET", "grande")) as string).length, 300_000);
    await assert.rejects(redisCommand(redis.url, "NAO-EXISTE"), /redis: ERR unknown command/);

    await using other = await RedisServer.start();
    assert.notEqual(other.port, redis.port, "each one on a port of its own");
    assert.equal(await redisCommand(other.url, "GET", "chave"), null, "and a store of its own");
  },
);

redisTest(
  "acknowledged writes survive a restart (SIGTERM) and a kill (SIGKILL): the append-only file",
  async (redis) => {
    await redisCommand(redis.url, "SET", "antes", "1");
    const firstPid = redis.pid;
    await redis.restart();
    assert.notEqual(redis.pid, firstPid);
    assert.equal(redis.url, `redis://127.0.0.1:${redis.port}`, "the same port");
    assert.equal(await redisCommand(redis.url, "GET", "antes"), "1");

    await redisCommand(redis.url, "INCR", "contador");
    await redisCommand(redis.url, "INCR", "contador");
    await redis.kill();
    await assert.rejects(redisCommand(redis.url, "PING"), "killed: nobody answers");
    await redis.restart();
    assert.equal(await redisCommand(redis.url, "GET", "contador"), "2", "fsync'd before each answer");
  },
);

redisTest(
  "close() kills it and removes its temporary directory; a directory given is kept",
  async (redis) => {
    const started = await RedisServer.start();
    const { dir, url } = started;
    await redisCommand(url, "SET", "k", "v");
    assert.ok(await exists(dir));
    await started.close();
    await assert.rejects(redisCommand(url, "PING"));
    assert.equal(await exists(dir), false, "its temporary directory is gone");

    const kept = `${redis.dir}/dele`;
    const inside = await RedisServer.start({ dir: kept });
    await redisCommand(inside.url, "SET", "k", "v");
    await inside.close();
    assert.ok(await exists(kept), "a directory it was given stays, for its owner to remove");
  },
);
