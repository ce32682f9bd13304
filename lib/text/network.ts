/**
 * The words for what goes wrong on the network and with an address on a
 * command line, for the wire layer's errors and each program's messages.
 *
 * @module
 */

/** Why a service did not answer, for each program to say in its own words. */
export type NetworkError =
  | "refused"
  | "timeout"
  | "notFound"
  | "closed"
  | "unreachable"
  | "tooLarge"
  | "other";

/** The kinds in Portuguese: the words of the programs' logs, and of the Portuguese client. */
export const NETWORK_ERRORS_PT: Readonly<Record<NetworkError, string>> = {
  refused: "conexão recusada",
  timeout: "tempo esgotado",
  notFound: "endereço não encontrado",
  closed: "conexão encerrada",
  unreachable: "endereço inalcançável",
  tooLarge: "resposta grande demais",
  other: "erro de rede",
};

/** What is wrong with an address, or a list of them, on a command line. */
export type AddressFlaw = "invalid" | "empty" | "duplicate";

/** The flaws in Portuguese, each about its item (for `empty`, the whole list): the programs' words. */
export const ADDRESS_FLAWS_PT: Readonly<Record<AddressFlaw, (item: string) => string>> = {
  invalid: (item) => `endereço inválido '${item}' (use HOST:PORTA)`,
  empty: (list) => `item vazio na lista '${list}' (use HOST:PORTA[,HOST:PORTA...])`,
  duplicate: (item) => `'${item}' aparece mais de uma vez na lista`,
};

/** The flaws in English. */
export const ADDRESS_FLAWS_EN: Readonly<Record<AddressFlaw, (item: string) => string>> = {
  invalid: (item) => `invalid address '${item}' (use HOST:PORT)`,
  empty: (list) => `empty item in the list '${list}' (use HOST:PORT[,HOST:PORT...])`,
  duplicate: (item) => `'${item}' appears more than once in the list`,
};
