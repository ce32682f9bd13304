# start.ps1: the rpc-chat system on Windows, like the original start.bat.
#
# Starts the binder, waits for it, starts the chat server, waits for it, then
# opens two clients, each in its own window. Every program runs with its own
# exact permissions (see README.md).
#
#   powershell -ExecutionPolicy Bypass -File start.ps1
#   powershell -ExecutionPolicy Bypass -File start.ps1 -BinderPort 5000 -ServerPort 8001
#
# The text is plain ASCII on purpose: Windows PowerShell 5.1 reads a script
# without a byte order mark in the legacy code page.

param(
    [int]$BinderPort = 5000,
    [int]$ServerPort = 8001,
    [int]$WaitSeconds = 30
)

$ErrorActionPreference = "Stop"
Set-Location -Path $PSScriptRoot

if (-not (Get-Command deno -ErrorAction SilentlyContinue)) {
    Write-Host "Deno nao encontrado no PATH. Instale com: npm install -g deno@2.9.6" -ForegroundColor Red
    exit 1
}

# Waits until something accepts connections on 127.0.0.1:$Port.
function Wait-Port {
    param([string]$Name, [int]$Port)
    $deadline = (Get-Date).AddSeconds($WaitSeconds)
    while ((Get-Date) -lt $deadline) {
        $tcp = New-Object System.Net.Sockets.TcpClient
        try {
            $tcp.Connect("127.0.0.1", $Port)
            Write-Host "$Name pronto na porta $Port."
            return
        } catch {
            Start-Sleep -Milliseconds 250
        } finally {
            $tcp.Dispose()
        }
    }
    Write-Host "Sem resposta do $Name na porta $Port depois de $WaitSeconds s." -ForegroundColor Red
    exit 1
}

$binder = "127.0.0.1:$BinderPort"

Write-Host "Iniciando o binder..."
Start-Process -FilePath "deno" -WorkingDirectory $PSScriptRoot -ArgumentList @(
    "run", "--allow-net", "binder.ts", "--port", "$BinderPort"
)
Wait-Port -Name "binder" -Port $BinderPort

Write-Host "Iniciando o servidor de chat..."
Start-Process -FilePath "deno" -WorkingDirectory $PSScriptRoot -ArgumentList @(
    "run", "--allow-net", "--allow-sys=networkInterfaces", "--allow-read=chat.db",
    "--allow-write=chat_server.log,chat.db", "server.ts", "--port", "$ServerPort", "--binder", $binder
)
Wait-Port -Name "servidor" -Port $ServerPort

Write-Host "Abrindo dois clientes, cada um em sua janela..."
Start-Process -FilePath "deno" -WorkingDirectory $PSScriptRoot -ArgumentList @(
    "run", "--allow-net", "cliente.ts", "--binder", $binder
)
Start-Process -FilePath "deno" -WorkingDirectory $PSScriptRoot -ArgumentList @(
    "run", "--allow-net", "cliente.ts", "--binder", $binder
)

Write-Host "Pronto. Feche as janelas do binder e do servidor para encerrar."
