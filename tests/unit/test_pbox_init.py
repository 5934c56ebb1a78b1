"""`pbox init` writes a valid, vaulted production inventory; `pbox inventory check` names every problem."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pbox import init
from pbox.inventory_check import check, required_role_vars
from pbox.paths import INVENTORIES, PLAYBOOKS, REPO

BIN = Path(sys.executable).parent
CITIES = {"centralized": (), "distributed": ("320100=nanjing,320200",), "hybrid": ("320500=suzhou",)}
SITE_GROUPS = {"centralized": set(), "distributed": {"site_province", "site_nanjing", "site_c320200"},
               "hybrid": {"site_province", "site_suzhou"}}
SERVICE_GROUPS = {"loadbalancer", "app", "postgresql", "postgresql_primary", "postgresql_replica",
                  "object_storage", "monitoring", "backup", "restore_drill"}


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}  # rich wraps help text to the terminal width
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False, timeout=120, env=env)


def generate(tmp: Path, mode: str, **kw) -> init.Written:
    req = init.Request(mode, "320000", CITIES[mode], tmp / "inv", vault_password_file=tmp / "vault.pass",
                       **kw)
    return init.write(req)


@pytest.fixture(scope="module", params=sorted(CITIES))
def written(request, tmp_path_factory) -> init.Written:
    return generate(tmp_path_factory.mktemp(request.param), request.param)


def vaulted_secrets(w: init.Written) -> dict[str, str]:
    """Every pbox_secret_* of the inventory, decrypted with the generated password."""
    from ansible.parsing.vault import VaultLib, VaultSecret

    vault = VaultLib([("default", VaultSecret(w.vault_password_file.read_bytes().strip()))])

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!vault", lambda loader, node: vault.decrypt(node.value).decode())
    out = {}
    for f in w.output.glob("group_vars/*/vault.yml"):
        for name, value in yaml.load(f.read_text(), Loader=Loader).items():
            out[f"{f.parent.name}/{name}"] = value
    return out


# --- each mode ------------------------------------------------------------------------------------


def test_generated_inventory_passes_the_check(written):
    report = check(written.output)
    assert report.ok, report.errors
    # A fresh inventory only lacks real addresses.
    assert len(report.warnings) == 1 and "placeholder address" in report.warnings[0]
    assert set(report.sites) == (SITE_GROUPS[written.plan.mode] or {"all"})


def test_ansible_inventory_lists_the_expected_groups(written):
    r = run(str(BIN / "ansible-inventory"), "-i", str(written.output), "--list",
            "--vault-password-file", str(written.vault_password_file))
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert set(data["all"]["children"]) - {"ungrouped"} == SERVICE_GROUPS | SITE_GROUPS[written.plan.mode]
    assert len(data["_meta"]["hostvars"]) == len(written.plan.hosts())
    assert len(data["postgresql_primary"]["hosts"]) == len(written.plan.sites)


def test_site_playbook_syntax_check(written):
    r = run(str(BIN / "ansible-playbook"), "--syntax-check", "-i", str(written.output),
            "--vault-password-file", str(written.vault_password_file), str(PLAYBOOKS / "site.yml"))
    assert r.returncode == 0, r.stdout + r.stderr


def test_no_secret_in_clear(written):
    secrets = vaulted_secrets(written)
    names = init.secret_names(init.secret_vars())
    sites = SITE_GROUPS[written.plan.mode] or {"all"}
    assert set(secrets) == {f"{s}/pbox_secret_{n}" for s in sites for n in names}
    assert len(set(secrets.values())) == len(secrets), "every secret is its own"
    password = written.vault_password_file.read_text().strip()
    for f in written.output.rglob("*"):
        if f.is_file():
            text = f.read_text()
            leaked = [k for k, v in secrets.items() if v in text]
            assert not leaked and password not in text, f"{f}: {leaked or 'the vault password'} in clear"
    assert stat.S_IMODE(written.vault_password_file.stat().st_mode) == 0o600
    assert not written.vault_password_file.is_relative_to(written.output)


def test_generated_files_are_lint_clean(written):
    """An inventory written into inventories/ must keep `make test-static` green."""
    r = run(str(BIN / "yamllint"), "--strict", "-c", str(REPO / ".yamllint"), str(written.output))
    assert r.returncode == 0, r.stdout


def test_roles_take_the_vaulted_secrets(written):
    """group_vars map each role's password variable to the site's vaulted secret."""
    main = yaml.safe_load((written.output / "group_vars/all/main.yml").read_text())
    for var, name in init.secret_vars():
        assert main[var] == f"{{{{ pbox_secret_{name} }}}}"


def test_secrets_playbook_generates_nothing_the_inventory_vaults(tmp_path):
    w = generate(tmp_path, "hybrid")
    secrets_dir = tmp_path / "controller-secrets"
    r = run(str(BIN / "ansible-playbook"), "-i", str(w.output), "--vault-password-file",
            str(w.vault_password_file), "-e", f"pbox_secrets_dir={secrets_dir}",
            str(PLAYBOOKS / "secrets.yml"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert not [p for p in secrets_dir.rglob("*") if p.is_file()]


# --- init's own errors ----------------------------------------------------------------------------


def test_refuses_an_existing_directory_unless_forced(tmp_path):
    generate(tmp_path, "centralized")
    with pytest.raises(init.InitError, match="exists: choose another --output or pass --force"):
        generate(tmp_path, "centralized")
    with pytest.raises(init.InitError, match="is not an inventory"):
        init.write(init.Request("centralized", "320000", output=tmp_path, force=True,
                                vault_password_file=tmp_path / "vault.pass"))
    again = generate(tmp_path, "centralized", force=True)
    assert not again.vault_password_created  # the same password file, reused
    assert check(again.output).ok


@pytest.mark.parametrize(("mode", "cities", "message"), [
    ("centralized", ("320100",), "a centralized inventory has no city sites"),
    ("distributed", (), "needs at least one city site"),
    ("hybrid", ("330100",), "city 330100 (杭州市) is not in province 320000 (江苏省)"),
    ("hybrid", ("320101",), "'320101' is not a GB/T 2260 city code"),
    ("hybrid", ("320100=Nan-jing",), "site name 'Nan-jing' must be lower-case letters and digits"),
    ("hybrid", ("320100,320100",), "code 320100 given twice"),
])
def test_bad_requests(tmp_path, mode, cities, message):
    with pytest.raises(init.InitError) as e:
        init.write(init.Request(mode, "320000", cities, tmp_path / "inv", vault_password_file=tmp_path / "p"))
    assert message in str(e.value)
    assert not (tmp_path / "inv").exists()


def test_bad_province(tmp_path):
    with pytest.raises(init.InitError, match="'320100' is not a GB/T 2260 province"):
        init.write(init.Request("centralized", "320100", output=tmp_path / "inv",
                                vault_password_file=tmp_path / "p"))


def test_hosts_file_addresses(tmp_path):
    hosts = tmp_path / "hosts.yml"
    hosts.write_text("province-lb1: 10.20.0.1\nsuzhou-db1: db1.suzhou.example\n")
    w = generate(tmp_path, "hybrid", hosts_file=hosts)
    by_name = {h.name: h for h in w.plan.hosts()}
    assert by_name["province-lb1"].address == "10.20.0.1" and not by_name["province-lb1"].placeholder
    assert by_name["suzhou-db1"].address == "db1.suzhou.example"
    assert "province-lb1" not in check(w.output).warnings[0]
    hosts.write_text("no-such-host: 10.20.0.9\n")
    with pytest.raises(init.InitError, match="no host no-such-host in this layout"):
        generate(tmp_path, "hybrid", hosts_file=hosts, force=True)


def test_vault_password_file_inside_the_inventory_is_refused(tmp_path):
    with pytest.raises(init.InitError, match="inside the inventory"):
        init.write(init.Request("centralized", "320000", output=tmp_path / "inv",
                                vault_password_file=tmp_path / "inv" / "pass"))


def test_every_example_profile_secret_is_vaulted():
    names = set(init.secret_names(init.secret_vars()))
    for profile in ("centralized", "distributed", "hybrid"):
        example = yaml.safe_load((INVENTORIES / profile / "group_vars/all.yml").read_text())
        assert set(example["pbox_secret_names"]) == names


# --- the check's errors ---------------------------------------------------------------------------


@pytest.fixture
def distributed(tmp_path) -> Path:
    return generate(tmp_path, "distributed").output


def edit_yaml(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text("---\n" + yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


def errors_of(inv: Path) -> list[str]:
    report = check(inv)
    assert not report.ok
    return report.errors


def test_unknown_group(distributed):
    edit_yaml(distributed / "hosts.yml",
              lambda d: d["all"]["children"].update({"webservers": {"hosts": {"nanjing-app1": None}}}))
    assert any(e.startswith("group webservers: unknown group") for e in errors_of(distributed))


def test_missing_group_var(distributed):
    edit_yaml(distributed / "group_vars/site_nanjing/main.yml", lambda d: d.pop("pbox_region_code"))
    errors = errors_of(distributed)
    assert "host nanjing-lb1: missing variable pbox_region_code (the site's GB/T 2260 region code)" in errors


def test_missing_host_address(distributed):
    edit_yaml(distributed / "hosts.yml", lambda d: d["all"]["hosts"]["province-db2"].pop("ansible_host"))
    assert "host province-db2: missing host variable ansible_host (its address)" in errors_of(distributed)


def test_duplicate_address(distributed):
    def same(d):
        d["all"]["hosts"]["province-db1"]["ansible_host"] = "10.0.0.5"
        d["all"]["hosts"]["nanjing-db1"]["ansible_host"] = "10.0.0.5"
    edit_yaml(distributed / "hosts.yml", same)
    assert "address 10.0.0.5 is used by several hosts: nanjing-db1, province-db1" in errors_of(distributed)


def test_host_in_no_group(distributed):
    edit_yaml(distributed / "hosts.yml",
              lambda d: d["all"]["hosts"].update({"stray": {"ansible_host": "10.9.9.9"}}))
    errors = errors_of(distributed)
    assert any(e.startswith("host stray: in no group") for e in errors)
    assert any(e.startswith("host stray: in no site group") for e in errors)


def test_city_outside_the_province(distributed):
    edit_yaml(distributed / "group_vars/site_nanjing/main.yml", lambda d: d.update(pbox_region_code="330100"))
    assert ("group site_nanjing: city 330100 (杭州市) is not in province 320000 (江苏省)"
            in errors_of(distributed))


def test_site_without_a_database_primary(distributed):
    edit_yaml(distributed / "hosts.yml",
              lambda d: d["all"]["children"]["postgresql_primary"]["hosts"].pop("nanjing-db1"))
    assert "group site_nanjing: no host in postgresql_primary (a site needs one)" in errors_of(distributed)


def test_missing_inventory(tmp_path):
    assert errors_of(tmp_path / "nope") == [f"inventory not found: {tmp_path / 'nope'}"]


def test_required_argument_spec_options(tmp_path):
    """A role option `required: true` without a default is required on the hosts that run the role."""
    (tmp_path / "books").mkdir()
    (tmp_path / "books/x.yml").write_text("- hosts: app\n  roles: [demo]\n")
    spec = tmp_path / "roles/demo/meta/argument_specs.yml"
    spec.parent.mkdir(parents=True)
    spec.write_text(yaml.safe_dump({"argument_specs": {"main": {"options": {
        "demo_url": {"type": "str", "required": True},
        "demo_port": {"type": "int", "required": True, "default": 1},
        "demo_opt": {"type": "str"}}}}}))
    assert required_role_vars(tmp_path / "books", tmp_path / "roles") == {"app": {"demo_url": "demo"}}


# --- the CLI --------------------------------------------------------------------------------------


def pbox(*args: str) -> subprocess.CompletedProcess[str]:
    return run(str(BIN / "pbox"), *args)


@pytest.mark.parametrize("cmd", [["init"], ["inventory"], ["inventory", "check"]])
def test_help(cmd):
    r = pbox(*cmd, "--help")
    assert r.returncode == 0 and "Usage:" in r.stdout and "Show this message and exit." in r.stdout


def test_cli_init_and_check(tmp_path):
    out, pw = tmp_path / "js", tmp_path / "js.pass"
    r = pbox("init", "--mode", "hybrid", "--province", "320000", "--cities", "320500=suzhou",
             "--output", str(out), "--vault-password-file", str(pw))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "inventory ok" in r.stdout and "site_suzhou" in r.stdout
    r = pbox("init", "-m", "hybrid", "-p", "320000", "-c", "320500", "-o", str(out),
             "--vault-password-file", str(pw))
    assert r.returncode == 2 and r.stderr.startswith("error:") and "--force" in r.stderr
    assert pbox("inventory", "check", "-i", str(out)).returncode == 0
    assert pbox("inventory", "check", "-i", str(out), "--strict").returncode == 1
    edit_yaml(out / "group_vars/site_suzhou/main.yml", lambda d: d.update(pbox_region_code="330100"))
    r = pbox("inventory", "check", "-i", str(out))
    assert r.returncode == 1
    assert "error: group site_suzhou: city 330100 (杭州市) is not in province" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr


def test_cli_bad_mode_is_one_line():
    r = pbox("init", "--mode", "federal", "--province", "320000")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert next(ln for ln in r.stderr.splitlines() if ln.strip()).startswith("error:")


def test_new_provinces_get_the_national_suite_unless_asked_otherwise(tmp_path):
    """Issue 24: `sm` by default, passed to the app by roles/app as PBOX_CRYPTO_SUITE."""
    def suite(w: init.Written) -> str:
        return yaml.safe_load((w.output / "group_vars/all/main.yml").read_text())["app_crypto_suite"]

    assert suite(generate(tmp_path / "a", "centralized")) == "sm"
    assert suite(generate(tmp_path / "b", "centralized", crypto_suite="standard")) == "standard"
    for env in ("app.env.j2", "migrate.env.j2"):
        template = (REPO / "roles/app/templates" / env).read_text()
        assert "PBOX_CRYPTO_SUITE='{{ app_crypto_suite }}'" in template
