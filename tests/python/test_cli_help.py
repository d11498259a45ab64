"""`rayc`'s own help, read as a new user reads it: every command and subcommand answers
--help (exit 0, on stdout) and names every flag its parser accepts, `rayc --version` prints
the project's version, and a bad command line exits 2 with a first line that says what is
wrong and which help to read. Nothing here starts a cluster.

The flags a command accepts are read from its option table in cli/*.c (the table that both
parses and prints the help): a flag that some command parses outside a table, or a table that
help does not reach, fails this suite.
"""

import os
import re
import subprocess

import pytest

from cli_cluster import RAYC, session_root

SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CLI_DIR = os.path.join(SRC, "cli")

# Flags rayc writes into its daemons' command lines (rayc-gcs, rayc-raylet, rayc-market);
# rayc itself does not accept them.
DAEMON_FLAGS = {"--gcs-address", "--ready-file", "--session-dir", "--auth-dir", "--port-file", "--host",
                "--state-dir", "--head", "--insecure", "--bind-all", "--join-token", "--ca-cert-hash", "--ca-cert",
                "--node-ip-address", "--redis-address", "--redis-password-file", "--redis-username", "--port",
                "--config", "--address"}
# The option rows the tables share through a macro (cli_int.h).
MACRO_FLAGS = {"CLI_OPT_ADDRESS": "--address", "CLI_OPT_FORMAT": "--format", "CLI_OPT_DASHBOARD_ADDRESS": "--address"}


def run(*args, stdin=None):
    return subprocess.run([RAYC, *args], capture_output=True, text=True, timeout=60, input=stdin,
                          env=dict(os.environ, RAYC_SESSION_ROOT=session_root()))


def sources():
    out = {}
    for name in sorted(os.listdir(CLI_DIR)):
        if name.endswith(".c"):
            with open(os.path.join(CLI_DIR, name)) as f:
                out[name] = f.read()
    return out


def option_tables():
    """{spec path ("rayc kv put"): set of flags}, from the cli_opt tables and the cli_specs
    that name them."""
    out = {}
    for text in sources().values():  # the tables are static: a spec names one of its own file
        tables = {}
        for m in re.finditer(r"static const cli_opt (\w+)\[\] = \{(.*?)\n?\};", text, re.S):
            body = m.group(2)
            flags = set(re.findall(r'\{"(--[a-z0-9-]+)"', body))
            flags |= {flag for macro, flag in MACRO_FLAGS.items() if macro in body}
            tables[m.group(1)] = flags
        for m in re.finditer(r'static const cli_spec \w+ = \{\s*"(rayc[a-z -]*)",(.*?)\};', text, re.S):
            t = re.search(r"CLI_SPEC_OPTS\((\w+)\)", m.group(2))
            out[m.group(1)] = tables[t.group(1)] if t else set()
    assert out, "no cli_spec found in cli/*.c"
    return out


def listed(help_text, heading):
    """The names listed under 'commands:' or 'subcommands:' in a group's help."""
    m = re.search(rf"^{heading}:\n((?:  \S.*\n)+)", help_text, re.M)
    return [line.split()[0] for line in m.group(1).splitlines()] if m else []


def all_command_paths():
    """Every command and subcommand reachable from `rayc --help`, as argument lists."""
    top = run("--help")
    assert top.returncode == 0 and top.stdout.startswith("usage: rayc"), top
    paths = []
    for cmd in listed(top.stdout, "commands"):
        h = run(cmd, "--help")
        assert h.returncode == 0, (cmd, h.stderr)
        subs = listed(h.stdout, "subcommands")
        paths += [[cmd, s] for s in subs] if subs else [[cmd]]
    return paths


def test_every_command_and_subcommand_has_help_with_every_flag():
    tables = option_tables()
    paths = all_command_paths()
    reached = set()
    for words in paths:
        path = "rayc " + " ".join(words)
        h = run(*words, "--help")
        assert h.returncode == 0, (path, h.stderr)
        assert h.stdout.startswith(f"usage: {path}"), (path, h.stdout[:200])
        assert h.stderr == "", (path, h.stderr)
        assert path in tables, f"{path} is listed in help but parses without an option table"
        reached.add(path)
        for flag in tables[path] | {"--help"}:
            line = next((ln for ln in h.stdout.splitlines() if re.search(rf"(^|\s){re.escape(flag)}(\s|$)", ln)),
                        None)
            assert line, f"'{path} --help' does not mention {flag}:\n{h.stdout}"
        # -h and `rayc help ...` are --help too
        assert run(*words, "-h").stdout == h.stdout
        assert run("help", *words).stdout == h.stdout
    assert not set(tables) - reached, f"commands that 'rayc --help' does not lead to: {set(tables) - reached}"
    start = run("start", "--help").stdout
    for flag in ("--block", "--port", "--address", "--node-ip-address", "--num-gpus", "--join-token"):
        assert flag in start
    assert "(default: 6379)" in start


def test_no_flag_is_parsed_outside_a_table():
    table_flags = set().union(*option_tables().values()) | {"--help"}  # --help: every command's
    top = run("--help").stdout  # rayc's own flags (--version) are in its help
    for name, text in sources().items():
        for flag in set(re.findall(r'"(--[a-z0-9-]+)(?:=)?"', text)):
            assert flag in table_flags or flag in DAEMON_FLAGS or re.search(rf"\s'?rayc {flag}\b", top), \
                f"cli/{name} names {flag} outside an option table (not in any --help)"


def test_version():
    with open(os.path.join(SRC, "CMakeLists.txt")) as f:
        version = re.search(r"project\(rayc VERSION ([0-9.]+)", f.read()).group(1)
    for args in (["--version"], ["version"]):
        p = run(*args)
        assert p.returncode == 0 and p.stdout == f"rayc, version {version}\n", p


@pytest.mark.parametrize("words", [["start"], ["stop"], ["status"], ["list"], ["kv", "put"], ["kv", "get"],
                                   ["token", "create"], ["market", "stop"], ["get-ca-cert"],
                                   ["job", "submit"], ["job", "status"], ["job", "logs"], ["job", "stop"],
                                   ["job", "delete"], ["job", "list"]])
def test_unknown_flag_exits_2_with_a_first_line_that_says_what_to_do(words):
    path = "rayc " + " ".join(words)
    p = run(*words, "--no-such-flag")
    assert p.returncode == 2, p
    assert p.stderr.splitlines()[0] == f"{path}: unknown option --no-such-flag; see '{path} --help'", p.stderr
    assert p.stdout == ""
    assert not [d for d in os.listdir(session_root()) if d.startswith("session_")], "a usage error made a session"


def test_other_usage_errors_name_the_problem_and_the_help():
    cases = [
        (["bogus"], "rayc: unknown command 'bogus'; see 'rayc --help'"),
        ([], "rayc: no command given; see 'rayc --help'"),
        (["kv"], "rayc kv: no subcommand given; see 'rayc kv --help'"),
        (["kv", "bogus"], "rayc kv: unknown subcommand 'bogus'; see 'rayc kv --help'"),
        (["kv", "get", "ns"], "rayc kv get: missing arguments: NS KEY; see 'rayc kv get --help'"),
        (["kv", "get", "ns", "k", "extra"], "rayc kv get: unexpected argument 'extra'; see 'rayc kv get --help'"),
        (["start", "--port"], "rayc start: --port needs a value (N); see 'rayc start --help'"),
        (["start", "--head", "--port", "99999"],
         "rayc start: --port needs a whole number in 0..65535, not '99999'; see 'rayc start --help'"),
        (["stop", "--force=yes"], "rayc stop: --force takes no value; see 'rayc stop --help'"),
        (["list", "bogus"],
         "rayc list: 'bogus' is not one of nodes, jobs, actors, placement-groups, tasks; see 'rayc list --help'"),
        (["list", "nodes", "--format", "xml"], "rayc list: --format is table or json, not 'xml'; see 'rayc list --help'"),
        (["kv", "put", "ns", "k", "@/nonexistent/value"], "rayc kv put: cannot read the value from /nonexistent/value"),
        (["job"], "rayc job: no subcommand given; see 'rayc job --help'"),
        (["job", "bogus"], "rayc job: unknown subcommand 'bogus'; see 'rayc job --help'"),
        (["job", "submit", "--no-wait"],
         "rayc job submit: no entrypoint: give the command after --, e.g. rayc job submit -- python3 script.py; "
         "see 'rayc job submit --help'"),
        (["job", "submit", "--entrypoint-num-cpus", "many", "--", "true"],
         "rayc job submit: --entrypoint-num-cpus needs a non-negative number, not 'many'"),
        (["job", "submit", "--metadata-json", "[1]", "--", "true"],
         "rayc job submit: --metadata-json needs a JSON object: not an object"),
        (["job", "submit", "--address"], "rayc job submit: --address needs a value (URL)"),
        (["job", "status"],
         "rayc job status: which job? give its submission ID ('rayc job list' shows them); "
         "see 'rayc job status --help'"),
        (["job", "logs", "a", "b"], "rayc job logs: unexpected argument 'b'; see 'rayc job logs --help'"),
        (["job", "stop", "../x"], "rayc job stop: '../x' is not a job ID"),
        (["job", "list", "--format", "xml"], "rayc job list: --format is table or json, not 'xml'"),
    ]
    for args, first in cases:
        p = run(*args)
        assert p.returncode == 2, (args, p)
        assert p.stderr.splitlines()[0].startswith(first), (args, p.stderr)
