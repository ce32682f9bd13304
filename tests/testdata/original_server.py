"""A stand-in for the original Python ChatService: only the original methods.

No extensions (no aguardar_mensagens, no sair_do_servico, no system.*
introspection) and no session cookie, as the original server.py. The tests
use it to check that cliente.ts falls back to polling `receber_mensagens`.

    python3 original_server.py [--binder HOST:PORT] [--hostile]

Listens on a free loopback port, registers as ChatService in the binder when
one is given, prints `Servidor ouvindo em 127.0.0.1:PORT`, the ready line, and then one line
`CALL metodo` per call it serves.
"""

import argparse
import datetime
import sys
import threading
import xmlrpc.client
from socketserver import ThreadingMixIn
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer


class Server(ThreadingMixIn, SimpleXMLRPCServer):
    daemon_threads = True


class Handler(SimpleXMLRPCRequestHandler):
    def log_message(self, *args):
        pass


lock = threading.Lock()
users = set()
rooms = {}  # name -> {"usuarios": [...], "mensagens": [...]}
room_of = {}  # user -> room


def now():
    return xmlrpc.client.DateTime(datetime.datetime.now())


def post(room, origem, conteudo, destino="todos"):
    rooms[room]["mensagens"].append({
        "tipo": "broadcast" if destino == "todos" else "unicast",
        "origem": origem,
        "conteudo": conteudo,
        "timestamp": now(),
        "destino": destino,
    })


def visible(room, user):
    return [m for m in rooms[room]["mensagens"] if m["tipo"] == "broadcast" or m["destino"] == user][-50:]


def logged(function):
    def wrapper(*args):
        print("CALL " + function.__name__, flush=True)
        with lock:
            return function(*args)
    wrapper.__name__ = function.__name__
    return wrapper


@logged
def registrar_usuario(nome):
    if nome in users:
        return [False, "Nome de usuário já está em uso."]
    users.add(nome)
    return [True, "Usuário registrado com sucesso."]


@logged
def criar_sala(nome):
    if nome in rooms:
        return [False, "Sala já existe."]
    rooms[nome] = {"usuarios": [], "mensagens": []}
    return [True, "Sala criada com sucesso."]


def leave(usuario):
    room = room_of.pop(usuario, None)
    if room is None:
        return False
    rooms[room]["usuarios"].remove(usuario)
    post(room, "SERVER", usuario + " saiu da sala.")
    return True


@logged
def entrar_na_sala(usuario, sala):
    if sala not in rooms:
        return [False, "Sala não existe."]
    leave(usuario)
    rooms[sala]["usuarios"].append(usuario)
    room_of[usuario] = sala
    post(sala, "SERVER", usuario + " entrou na sala.")
    return [True, {"usuarios": list(rooms[sala]["usuarios"]), "mensagens": visible(sala, usuario)}]


@logged
def sair_da_sala(usuario):
    if leave(usuario):
        return [True, "Você saiu da sala."]
    return [False, "Usuário não está em nenhuma sala."]


@logged
def enviar_mensagem(usuario, sala, texto, destinatario):
    if sala not in rooms or usuario not in rooms[sala]["usuarios"]:
        return [False, "Usuário não está na sala."]
    if destinatario is not None and destinatario not in rooms[sala]["usuarios"]:
        return [False, "Destinatário não está na sala."]
    post(sala, usuario, texto, "todos" if destinatario is None else destinatario)
    return [True, "Mensagem enviada."]


@logged
def receber_mensagens(usuario, sala):
    if sala not in rooms:
        return [False, "Sala não existe."]
    return [True, visible(sala, usuario)]


@logged
def listar_salas():
    return [True, sorted(rooms)]


@logged
def listar_usuarios(sala):
    if sala not in rooms:
        return [False, "Sala não existe."]
    return [True, list(rooms[sala]["usuarios"])]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binder")
    parser.add_argument("--hostile", action="store_true",
                        help="start with a room 'geral' holding a message full of terminal escape sequences")
    args = parser.parse_args()
    if args.hostile:
        # Raw control characters cannot travel in a request (XML 1.0), but a server can send them.
        rooms["geral"] = {"usuarios": [], "mensagens": []}
        post("geral", "mal\x1b[31m", "\x1b[2J\x1b]0;pwned\x07oi\x1b[5mpisca\u202eabc\x9b1m\n[00:00:00] SERVER: falso")
    server = Server(("127.0.0.1", 0), requestHandler=Handler, allow_none=True, logRequests=False)
    for function in (registrar_usuario, criar_sala, entrar_na_sala, sair_da_sala, enviar_mensagem,
                     receber_mensagens, listar_salas, listar_usuarios):
        server.register_function(function)
    port = server.server_address[1]
    if args.binder:
        binder = xmlrpc.client.ServerProxy("http://" + args.binder, allow_none=True)
        print(binder.registrar_procedimento("ChatService", "127.0.0.1", port), file=sys.stderr, flush=True)
    print("Servidor ouvindo em 127.0.0.1:%d" % port, flush=True)
    # The ready line our programs print (deps/child.ts), so the tests start it as they start ours.
    print('rpc-chat-pronto {"programa": "server", "host": "127.0.0.1", "porta": %d}' % port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
