"""deploy.sh against a fake ``gcloud`` that records every call and keeps a little state."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "deploy.sh"
PROJECT = "demo-project"
SA = f"segment-novu@{PROJECT}.iam.gserviceaccount.com"
NOVU_KEY = "nk-7f3a9c0e-ONLY-ON-STDIN"
SEGMENT_SECRET = "seg-b41d2e88-ONLY-ON-STDIN"
READ_ONLY = (("config", "get-value"), ("auth", "list"), ("secrets", "describe"),
             ("iam", "service-accounts", "describe"))

FAKE_GCLOUD = textwrap.dedent(
    """\
    #!{python}
    import json, os, sys

    args = sys.argv[1:]
    log, state_path = os.environ["FAKE_GCLOUD_LOG"], os.environ["FAKE_GCLOUD_STATE"]
    with open(state_path) as f:
        state = json.load(f)
    entry = {{"argv": args, "cwd": os.getcwd()}}
    if args[:3] == ["secrets", "versions", "add"]:
        entry["stdin"] = sys.stdin.read()
    with open(log, "a") as f:
        f.write(json.dumps(entry) + "\\n")

    def save():
        with open(state_path, "w") as f:
            json.dump(state, f)

    def describe(kind, name):
        if state.get("deny"):
            sys.exit("ERROR: PERMISSION_DENIED: caller lacks permission")
        if name not in state[kind]:
            sys.exit(f"ERROR: NOT_FOUND: {{name}} not found")
        print(f"name: {{name}}")

    if args[:3] == ["config", "get-value", "project"]:
        print(state.get("project", ""))
    elif args[:2] == ["auth", "list"]:
        print("" if state.get("logged_out") else "deployer@example.com")
    elif args[:2] == ["secrets", "describe"]:
        describe("secrets", args[2])
    elif args[:2] == ["secrets", "create"]:
        state["secrets"].append(args[2])
        save()
    elif args[:3] == ["iam", "service-accounts", "describe"]:
        describe("accounts", args[3])
    elif args[:3] == ["iam", "service-accounts", "create"]:
        state["accounts"].append(args[3] + "@{project}.iam.gserviceaccount.com")
        save()
    elif args[:2] == ["functions", "describe"]:
        print("https://segment-novu-abc123-uc.a.run.app")
    """
)


class Fake:
    def __init__(self, tmp_path: Path):
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        gcloud = self.bin / "gcloud"
        gcloud.write_text(FAKE_GCLOUD.format(python=sys.executable, project=PROJECT))
        gcloud.chmod(0o755)
        self.log = tmp_path / "gcloud.log"
        self.state_path = tmp_path / "state.json"
        self.cwd = tmp_path
        self.set_state(secrets=[], accounts=[])

    def set_state(self, **state):
        state.setdefault("project", PROJECT)
        self.state_path.write_text(json.dumps(state))

    def run(self, *args, stdin="", env=None):
        self.log.write_text("")
        full_env = {
            **os.environ,
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "FAKE_GCLOUD_LOG": str(self.log),
            "FAKE_GCLOUD_STATE": str(self.state_path),
            **(env or {}),
        }
        full_env = {k: v for k, v in full_env.items() if not k.startswith("DEPLOY_") or k in (env or {})}
        return subprocess.run(
            ["bash", str(SCRIPT), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=full_env,
            cwd=self.cwd,
            timeout=60,
        )

    def calls(self):
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def argvs(self):
        return [call["argv"] for call in self.calls()]

    def find(self, *prefix):
        return [argv for argv in self.argvs() if argv[: len(prefix)] == list(prefix)]


def flag(argv, name):
    """Value of ``--name=value`` or ``--name value`` in argv."""
    for i, arg in enumerate(argv):
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
        if arg == f"--{name}":
            return argv[i + 1]
    return None


def env_vars(deploy_argv):
    raw = flag(deploy_argv, "set-env-vars")
    assert raw.startswith("^@^")
    return dict(item.split("=", 1) for item in raw[3:].split("@"))


def is_read_only(argv):
    return any(argv[: len(prefix)] == list(prefix) for prefix in READ_ONLY)


@pytest.fixture
def fake(tmp_path):
    return Fake(tmp_path)


def test_first_deploy_creates_secrets_from_stdin(fake):
    result = fake.run(stdin=f"{NOVU_KEY}\n{SEGMENT_SECRET}\n")
    assert result.returncode == 0, result.stderr

    assert [argv[2] for argv in fake.find("secrets", "create")] == ["novu-api-key", "segment-shared-secret"]
    for argv in fake.find("secrets", "create"):
        assert "--replication-policy=automatic" in argv
        assert flag(argv, "project") == PROJECT
    added = [call for call in fake.calls() if call["argv"][:3] == ["secrets", "versions", "add"]]
    assert [(call["argv"][3], call["stdin"]) for call in added] == [
        ("novu-api-key", NOVU_KEY),
        ("segment-shared-secret", SEGMENT_SECRET),
    ]
    assert all("--data-file=-" in call["argv"] for call in added)

    for value in (NOVU_KEY, SEGMENT_SECRET):
        assert not any(value in arg for argv in fake.argvs() for arg in argv)
        assert value not in result.stdout
        assert value not in result.stderr

    assert fake.find("iam", "service-accounts", "create")[0][3] == "segment-novu"
    assert result.stdout.splitlines()[0] == "https://segment-novu-abc123-uc.a.run.app"
    assert "Segment" in result.stdout


def test_second_run_creates_nothing(fake):
    fake.run(stdin=f"{NOVU_KEY}\n{SEGMENT_SECRET}\n")
    result = fake.run(stdin="")
    assert result.returncode == 0, result.stderr
    assert fake.find("secrets", "create") == []
    assert fake.find("secrets", "versions", "add") == []
    assert fake.find("iam", "service-accounts", "create") == []
    assert len(fake.find("functions", "deploy")) == 1


def test_only_missing_secret_reads_stdin(fake):
    fake.set_state(secrets=["novu-api-key"], accounts=[SA])
    result = fake.run(stdin=f"{SEGMENT_SECRET}\n")
    assert result.returncode == 0, result.stderr
    added = [call for call in fake.calls() if call["argv"][:3] == ["secrets", "versions", "add"]]
    assert [(call["argv"][3], call["stdin"]) for call in added] == [("segment-shared-secret", SEGMENT_SECRET)]


def test_missing_value_stops_before_creating_anything(fake):
    result = fake.run(stdin=f"{NOVU_KEY}\n")
    assert result.returncode == 1
    assert "segment-shared-secret" in result.stderr
    assert [argv for argv in fake.argvs() if not is_read_only(argv)] == []


@pytest.mark.parametrize("blank", [" ", "\t  "])
def test_blank_value_stops_before_creating_anything(fake, blank):
    result = fake.run(stdin=f"{NOVU_KEY}\n{blank}\n")
    assert result.returncode == 1
    assert "the value for new secret segment-shared-secret is blank" in result.stderr
    assert [argv for argv in fake.argvs() if not is_read_only(argv)] == []


def test_secret_access_is_granted_per_secret(fake):
    fake.set_state(secrets=["novu-api-key", "segment-shared-secret"], accounts=[SA])
    result = fake.run()
    assert result.returncode == 0, result.stderr
    bindings = fake.find("secrets", "add-iam-policy-binding")
    assert sorted(argv[2] for argv in bindings) == ["novu-api-key", "segment-shared-secret"]
    for argv in bindings:
        assert flag(argv, "member") == f"serviceAccount:{SA}"
        assert flag(argv, "role") == "roles/secretmanager.secretAccessor"
    assert fake.find("projects", "add-iam-policy-binding") == []
    assert not any("add-iam-policy-binding" in argv and argv[0] != "secrets" for argv in fake.argvs())


def test_deploy_command(fake):
    fake.set_state(secrets=["novu-api-key", "segment-shared-secret"], accounts=[SA])
    result = fake.run("--env", "LOG_LEVEL=DEBUG", "--env=MAPPING=a,b", "--min-instances", "1")
    assert result.returncode == 0, result.stderr
    [deploy] = fake.find("functions", "deploy")
    assert deploy[2] == "segment-novu"
    for expected in ("--gen2", "--runtime=python313", "--entry-point=handler", "--trigger-http",
                     "--allow-unauthenticated", "--source=."):
        assert expected in deploy
    assert flag(deploy, "region") == "us-central1"
    assert flag(deploy, "project") == PROJECT
    assert flag(deploy, "service-account") == SA
    assert flag(deploy, "min-instances") == "1"
    assert flag(deploy, "max-instances") == "10"
    assert flag(deploy, "concurrency") == "16"
    assert flag(deploy, "cpu") == "1"  # concurrency above 1 needs a whole vCPU
    assert env_vars(deploy) == {
        "NOVU_API_URL": "https://api.novu.co",
        "NOVU_API_KEY": f"projects/{PROJECT}/secrets/novu-api-key",
        "SEGMENT_SHARED_SECRET": f"projects/{PROJECT}/secrets/segment-shared-secret",
        "THREADS": "16",
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "MALLOC_MMAP_THRESHOLD_": "131072",
        "MALLOC_TRIM_THRESHOLD_": "131072",
        "LOG_LEVEL": "DEBUG",
        "MAPPING": "a,b",
    }
    # --source=. must be the project, whatever the caller's directory.
    assert {call["cwd"] for call in fake.calls() if call["argv"][:2] == ["functions", "deploy"]} == {str(ROOT)}
    [describe] = fake.find("functions", "describe")
    assert flag(describe, "format") == "value(serviceConfig.uri)"


def test_flags_and_environment_variables(fake):
    fake.set_state(secrets=["k", "s"], accounts=["bridge@other.iam.gserviceaccount.com"], project="")
    result = fake.run(
        "--project=p2", "--name", "bridge", "--novu-key-secret", "k", "--segment-secret", "s",
        "--service-account", "bridge@other.iam.gserviceaccount.com",
        env={"DEPLOY_REGION": "europe-west1", "DEPLOY_NOVU_API_URL": "https://eu.api.novu.co"},
    )
    assert result.returncode == 0, result.stderr
    assert fake.find("config") == []
    [deploy] = fake.find("functions", "deploy")
    assert deploy[2] == "bridge"
    assert flag(deploy, "region") == "europe-west1"
    assert flag(deploy, "service-account") == "bridge@other.iam.gserviceaccount.com"
    assert env_vars(deploy)["NOVU_API_URL"] == "https://eu.api.novu.co"
    assert env_vars(deploy)["NOVU_API_KEY"] == "projects/p2/secrets/k"
    assert env_vars(deploy)["SEGMENT_SHARED_SECRET"] == "projects/p2/secrets/s"


def test_max_instances_from_the_flag_or_the_environment(fake):
    fake.set_state(secrets=["novu-api-key", "segment-shared-secret"], accounts=[SA])
    assert fake.run("--max-instances", "4").returncode == 0
    assert [flag(deploy, "max-instances") for deploy in fake.find("functions", "deploy")] == ["4"]
    assert fake.run(env={"DEPLOY_MAX_INSTANCES": "3"}).returncode == 0
    assert [flag(deploy, "max-instances") for deploy in fake.find("functions", "deploy")] == ["3"]


def test_flag_overrides_environment_variable(fake):
    fake.set_state(secrets=["novu-api-key", "segment-shared-secret"], accounts=[SA])
    result = fake.run("--region", "asia-northeast1", env={"DEPLOY_REGION": "europe-west1"})
    assert result.returncode == 0, result.stderr
    assert flag(fake.find("functions", "deploy")[0], "region") == "asia-northeast1"


@pytest.mark.parametrize("args, env", [(["--dry-run"], {}), ([], {"DEPLOY_DRY_RUN": "true"})])
def test_dry_run_changes_nothing_and_prints_commands(fake, args, env):
    result = fake.run(*args, stdin=f"{NOVU_KEY}\n{SEGMENT_SECRET}\n", env=env)
    assert result.returncode == 0, result.stderr
    assert all(is_read_only(argv) for argv in fake.argvs()), fake.argvs()
    printed = [line for line in result.stderr.splitlines() if line.startswith("+ gcloud ")]
    for expected in ("secrets create novu-api-key", "secrets versions add segment-shared-secret",
                     "iam service-accounts create segment-novu", "secrets add-iam-policy-binding",
                     "functions deploy segment-novu", "functions describe segment-novu"):
        assert any(expected in line for line in printed), expected
    assert NOVU_KEY not in result.stdout + result.stderr
    assert "Dry run" in result.stdout


def path_without_gcloud(tmp_path: Path) -> str:
    """A PATH holding only what deploy.sh runs besides gcloud (this machine may have a real gcloud)."""
    folder = tmp_path / "no-gcloud"
    folder.mkdir()
    for tool in ("bash", "dirname", "sleep"):
        (folder / tool).symlink_to(shutil.which(tool))
    return str(folder)


def test_dry_run_without_gcloud_shows_the_whole_plan(fake, tmp_path):
    result = fake.run("--dry-run", env={"PATH": path_without_gcloud(tmp_path)})

    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[:2] == [
        "Dry run: gcloud is not installed, so nothing in Google Cloud is checked; this is the whole plan.",
        "Dry run: no project given (--project); the plan shows PROJECT.",
    ]
    printed = [line for line in result.stderr.splitlines() if line.startswith("+ gcloud ")]
    for expected in ("secrets create novu-api-key --replication-policy=automatic --project=PROJECT",
                     "iam service-accounts create segment-novu", "secrets add-iam-policy-binding segment-shared-secret",
                     "functions deploy segment-novu --gen2", "functions describe segment-novu"):
        assert any(expected in line for line in printed), expected
    assert "(not checked: gcloud is not installed; the plan assumes it does not exist)" in result.stderr
    assert result.stdout == "Dry run: nothing was changed.\n"
    assert fake.argvs() == []


def test_dry_run_when_gcloud_is_not_logged_in_says_so_in_one_line(fake):
    fake.set_state(secrets=[], accounts=[], logged_out=True)
    result = fake.run("--dry-run", "--project", PROJECT)

    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        "Dry run: gcloud is not logged in, so nothing in Google Cloud is checked; this is the whole plan.")
    assert "ERROR" not in result.stderr
    assert any(line.startswith("+ gcloud functions deploy segment-novu") for line in result.stderr.splitlines())
    assert fake.argvs() == [["auth", "list", "--filter=status:ACTIVE", "--format=value(account)"]]
    assert result.stdout == "Dry run: nothing was changed.\n"


def test_a_deploy_when_gcloud_is_not_logged_in_stops_before_anything(fake):
    fake.set_state(secrets=[], accounts=[], logged_out=True)
    result = fake.run(stdin=f"{NOVU_KEY}\n{SEGMENT_SECRET}\n")

    assert result.returncode == 1
    assert result.stderr == ("deploy.sh: gcloud is not logged in: run 'gcloud auth login' (or activate a service "
                             "account) and run again\n")
    assert [argv for argv in fake.argvs() if not is_read_only(argv)] == []


def test_a_deploy_without_gcloud_says_what_to_install(fake, tmp_path):
    result = fake.run(stdin=f"{NOVU_KEY}\n{SEGMENT_SECRET}\n", env={"PATH": path_without_gcloud(tmp_path)})

    assert result.returncode == 1
    assert "deploy.sh: gcloud not found: install the Google Cloud CLI" in result.stderr


def test_dry_run_shows_a_refused_check_in_one_line_and_goes_on(fake):
    fake.set_state(secrets=[], accounts=[], deny=True)
    result = fake.run("--dry-run")

    assert result.returncode == 0, result.stderr
    refused = [line for line in result.stderr.splitlines() if "PERMISSION_DENIED" in line]
    assert refused == ["  (not checked: gcloud failed: PERMISSION_DENIED: caller lacks permission; the plan assumes "
                       "it does not exist)"] * 3
    assert result.stdout == "Dry run: nothing was changed.\n"


def test_no_segment_secret(fake):
    result = fake.run("--no-segment-secret", stdin=f"{NOVU_KEY}\n")
    assert result.returncode == 0, result.stderr
    assert [argv[2] for argv in fake.find("secrets", "create")] == ["novu-api-key"]
    assert [argv[2] for argv in fake.find("secrets", "add-iam-policy-binding")] == ["novu-api-key"]
    assert "segment-shared-secret" not in json.dumps(fake.argvs())
    assert "SEGMENT_SHARED_SECRET" not in env_vars(fake.find("functions", "deploy")[0])


def test_describe_failure_other_than_not_found_stops(fake):
    fake.set_state(secrets=[], accounts=[], deny=True)
    result = fake.run(stdin=f"{NOVU_KEY}\n{SEGMENT_SECRET}\n")
    assert result.returncode == 1
    assert "PERMISSION_DENIED" in result.stderr
    assert [argv for argv in fake.argvs() if not is_read_only(argv)] == []


def test_foreign_service_account_is_not_created(fake):
    fake.set_state(secrets=["novu-api-key", "segment-shared-secret"], accounts=[])
    result = fake.run("--service-account", "someone@elsewhere.iam.gserviceaccount.com")
    assert result.returncode == 1
    assert "not found" in result.stderr
    assert fake.find("iam", "service-accounts", "create") == []


def test_no_project(fake):
    fake.set_state(secrets=[], accounts=[], project="")
    result = fake.run()
    assert result.returncode == 1
    assert "--project" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--bogus"],
        ["--region"],
        ["--dry-run=yes"],
        ["--min-instances", "two"],
        ["--max-instances", "0"],
        ["--min-instances", "5", "--max-instances", "2"],
        ["--env", "NOT A PAIR"],
        ["--env", "THREADS=4"],
        ["--env", "CONTACT=ops@example.com"],
        ["--novu-key-secret", "bad/name"],
    ],
)
def test_bad_arguments_exit_2_with_usage(fake, args):
    result = fake.run(*args)
    assert result.returncode == 2
    assert "Usage: deploy.sh" in result.stderr
    assert [argv for argv in fake.argvs() if not is_read_only(argv)] == []


def test_help(fake):
    result = fake.run("--help")
    assert result.returncode == 0
    assert "--no-segment-secret" in result.stdout
    assert fake.argvs() == []
