/**
 * The chat protocol's vocabulary, shared by the server and the client: the
 * result shape of every method, the message struct, the reserved names.
 *
 * @module
 */

/** What every method answers: `[true, payload]`, or `[false, "mensagem"]` for a refusal. */
export type Result<T> = [true, T] | [false, string];

/** The sender of join and leave notices. */
export const SERVER = "SERVER";

/** The recipient of a public message. */
export const EVERYONE = "todos";

/** A chat message on the wire: the original struct plus `id` (our extension; the original has none). */
export interface ChatMessage {
  id?: number;
  tipo: "broadcast" | "unicast";
  origem: string;
  destino: string;
  conteudo: string;
  timestamp: Date;
}
