"""Jupyter kernel for velua: a thin ipykernel wrapper that drives a Lua 5.4 process running
lua/velua/kernel_server.lua. Requests go to the Lua process's stdin; replies come back on a
dedicated pipe (so output printed by C code cannot corrupt them); the process's own
stdout/stderr are forwarded as stream output. Interrupts are forwarded as SIGINT."""
import os
import signal
import subprocess
import sys
import threading

from ipykernel.kernelapp import IPKernelApp
from ipykernel.kernelbase import Kernel

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


class VeluaKernel(Kernel):
    implementation = "velua"
    implementation_version = "0.1"
    language = "lua"
    language_version = "5.4"
    language_info = {"name": "lua", "mimetype": "text/x-lua", "file_extension": ".lua",
                     "codemirror_mode": "lua", "pygments_lexer": "lua"}
    banner = "velua on Lua 5.4 (velua and T = velua.tensor are loaded)"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._start()

    def _start(self):
        r, w = os.pipe()
        env = dict(os.environ)
        env["VELUA_KERNEL_FD"] = str(w)
        env.setdefault("LUA_PATH", f"{REPO}/lua/?.lua;{REPO}/lua/?/init.lua;;")
        env.setdefault("LUA_CPATH", f"{REPO}/build/?.so;;")
        env.pop("LUA_PATH_5_4", None)
        env.pop("LUA_CPATH_5_4", None)
        self.proc = subprocess.Popen(["lua5.4", f"{REPO}/lua/velua/kernel_server.lua"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, pass_fds=(w,), env=env)
        os.close(w)
        self.replies = os.fdopen(r, "rb")
        threading.Thread(target=self._forward_output, daemon=True).start()

    def _forward_output(self):
        for line in iter(self.proc.stdout.readline, b""):
            self.send_response(self.iopub_socket, "stream",
                               {"name": "stdout", "text": line.decode("utf-8", "replace")})

    def _send(self, kind, payload):
        data = payload.encode("utf-8")
        self.proc.stdin.write(f"{kind} {len(data)}\n".encode() + data)
        self.proc.stdin.flush()

    def _read(self):
        header = self.replies.readline()
        if not header:
            return None, None
        kind, n = header.decode().split()
        return kind, self.replies.read(int(n)).decode("utf-8", "replace")

    def do_execute(self, code, silent, store_history=True, user_expressions=None,
                   allow_stdin=False):
        if self.proc.poll() is not None:
            self._start()
        # an interrupt during the cell is forwarded to the Lua process, which ends the cell with
        # the error "interrupted" and keeps its state; the reply loop below just carries on
        try:
            previous = signal.signal(signal.SIGINT, self._forward_interrupt)
        except ValueError:  # not the main thread: KeyboardInterrupt is caught below instead
            previous = None
        try:
            self._send("EXEC", code)
            return self._execute_replies(silent)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    def _forward_interrupt(self, signum=None, frame=None):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def _execute_replies(self, silent):
        status, error = "ok", None
        while True:
            try:
                kind, payload = self._read()
            except KeyboardInterrupt:
                self._forward_interrupt()
                continue
            if kind is None:
                status, error = "error", ("KernelDied", "the Lua process exited", [])
                break
            if kind == "DONE":
                break
            if silent:
                continue
            if kind == "STREAM":
                self.send_response(self.iopub_socket, "stream", {"name": "stdout", "text": payload})
            elif kind == "RESULT":
                self.send_response(self.iopub_socket, "execute_result", {
                    "execution_count": self.execution_count, "data": {"text/plain": payload},
                    "metadata": {}})
            elif kind == "SVG":
                self.send_response(self.iopub_socket, "display_data", {
                    "data": {"image/svg+xml": payload, "text/plain": "<velua figure>"},
                    "metadata": {}})
            elif kind == "ERROR":
                first = payload.split("\n", 1)[0]
                status, error = "error", ("LuaError", first, payload.split("\n"))
        if status == "error":
            ename, evalue, tb = error
            self.send_response(self.iopub_socket, "error",
                               {"ename": ename, "evalue": evalue, "traceback": tb})
            return {"status": "error", "execution_count": self.execution_count,
                    "ename": ename, "evalue": evalue, "traceback": tb}
        return {"status": "ok", "execution_count": self.execution_count, "payload": [],
                "user_expressions": {}}

    def do_complete(self, code, cursor_pos):
        self._send("COMPLETE", code[:cursor_pos])
        kind, payload = self._read()
        while kind not in ("MATCHES", None):
            kind, payload = self._read()
        length, _, rest = (payload or "0\n").partition("\n")
        matches = [m for m in rest.split("\n") if m]
        return {"status": "ok", "matches": matches, "cursor_start": cursor_pos - int(length),
                "cursor_end": cursor_pos, "metadata": {}}

    def do_shutdown(self, restart):
        try:
            self._send("QUIT", "")
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()
        return {"status": "ok", "restart": restart}


if __name__ == "__main__":
    IPKernelApp.launch_instance(kernel_class=VeluaKernel)
