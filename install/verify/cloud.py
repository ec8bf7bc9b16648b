"""The cloud checks: the instance image, the provider and self-service networks, an instance
reached by ping and SSH with its console log, a volume seen inside it, and the dashboard.
"""

from __future__ import annotations

import hashlib
import ipaddress
from urllib.parse import quote, urlsplit

from oslab.access.ssh import Result
from oslab.errors import OslabError
from oslab.install import instance_image, openrc
from oslab.install.verify.checklist import PHYSNET, PREFIX, REMOTE_TMP, SELF_SERVICE_CANDIDATES, TAG
from oslab.install.verify.horizon import (
    INSTANCES_PATH,
    LOGIN_PATH,
    Page,
    login_fields,
    login_form,
    not_answering,
    parse_instances,
    parse_login,
)
from oslab.install.verify.parsers import (
    console_host_keys,
    field_of,
    json_rows,
    parse_console,
    parse_dashboard,
    parse_partitions,
    parse_server,
    parse_volume_attachment,
)
from oslab.install.verify.results import CheckFailed, Verdict
from oslab.install.verify.runner import CheckRunner
from oslab.spec import LabSpec

NOT_FOUND = 127  # the shell's exit code for a command it cannot find

# -- pure helpers for the network layout ---------------------------------------------------------


def allocation_pool(cidr: ipaddress.IPv4Network,
                    gateway: ipaddress.IPv4Address) -> tuple[ipaddress.IPv4Address,
                                                             ipaddress.IPv4Address]:
    """Floating IPs: the upper half of the provider range (the install guide's .101-.250 on a
    /24 is the same idea), never the gateway (the host's side of the bridge)."""
    first = cidr.network_address + 1
    last = cidr.broadcast_address - 1
    start = max(first + (int(last) - int(first)) // 2, gateway + 1)
    if not start <= last:
        raise OslabError(f"the provider network {cidr} has no room for floating IPs",
                         hint="use a /28 or larger provider network")
    return start, last


def self_service_cidr(spec: LabSpec) -> ipaddress.IPv4Network:
    """The self-service subnet: the first candidate that overlaps no lab network."""
    for text in SELF_SERVICE_CANDIDATES:
        net = ipaddress.IPv4Network(text)
        if not any(net.overlaps(n.cidr) for n in spec.networks):
            return net
    raise OslabError("no free range for the self-service test network",
                     hint="the lab's networks overlap every candidate: "
                          + ", ".join(SELF_SERVICE_CANDIDATES))


class CloudChecks(CheckRunner):
    """Does the cloud work: an image, networks, an instance, a volume, the dashboard?"""

    # -- 2. image --

    def check_image(self) -> None:
        spec = self.lab.instance
        name = f"image: {spec.label} active"
        if not self.needs(name, "image", "identity"):
            return
        with self.row(name, "image") as d:
            local = self.lab.image()
            glance_name = spec.glance_name(PREFIX)
            remote = f"{REMOTE_TMP}/{glance_name}.img"
            data = local.read_bytes()
            have = self.sh(f"sha256sum {remote} 2>/dev/null")
            if not have.stdout.startswith(hashlib.sha256(data).hexdigest()):
                self.lab.controller.put(remote, data, timeout=self.t.command)
                d.append("uploaded")
            image = self.create("image", instance_image.create_args(spec, remote, glance_name),
                                openrc.ADMIN, "image delete {id}")
            self.ids["image"] = image

            def active(out: str) -> bool:
                status = str(field_of(out, "status", "image show"))
                if status in ("killed", "deleted"):
                    raise CheckFailed(f"the image went {status}",
                                      "/var/log/glance/api.log on the controller "
                                      "(filesystem_store_datadir, disk space)")
                return status == "active"

            done, out = self.poll("image show", self.t.image_active,
                                  f"image show {image} -f json", openrc.ADMIN, active,
                                  waiting=f"image {image} to become active")
            if not done:
                raise CheckFailed(f"image still {field_of(out, 'status', 'image show')} after "
                                  f"{self.t.image_active:.0f}s",
                                  "/var/log/glance/api.log on the controller")
            self.sh(f"rm -f {remote}")
            d.append(f"{glance_name} {image} active")

    # -- 3. network --

    def check_network(self) -> None:
        g = "network"
        if not self.needs("network: provider and self-service", g, "identity"):
            return
        spec = self.lab.spec
        with self.row("network: provider (flat, physnet provider)", g) as d:
            rows = json_rows(self.openstack(
                f"network list --provider-physical-network {PHYSNET} -f json"),
                "network list")
            if rows:
                self.ids["provider"] = str(rows[0]["ID"])
                d.append(f"using {rows[0].get('Name')} {rows[0]['ID']}")
            else:
                self.ids["provider"] = self.create(
                    "network", f"network create --share --external --provider-physical-network "
                    f"{PHYSNET} --provider-network-type flat {PREFIX}-provider",
                    openrc.ADMIN, "network delete {id}")
                start, end = allocation_pool(spec.provider.cidr, spec.provider.gateway)
                self.create("subnet", f"subnet create --network {self.ids['provider']} "
                            f"--subnet-range {spec.provider.cidr} "
                            f"--gateway {spec.provider.gateway} "
                            f"--allocation-pool start={start},end={end} "
                            f"--dns-nameserver {spec.provider.gateway} {PREFIX}-provider",
                            openrc.ADMIN, "subnet delete {id}")
                d.append(f"created on {spec.provider.cidr}, gateway {spec.provider.gateway}, "
                         f"floating IPs {start}-{end}")
        if g in self.failed_groups:
            return
        with self.row("network: self-service, router, security group, keypair", g) as d:
            demo = openrc.DEMO
            cidr = self_service_cidr(spec)
            net = self.create("network", f"network create {PREFIX}-selfservice", demo,
                              "network delete {id}")
            self.ids["selfservice"] = net
            subnet = self.create("subnet", f"subnet create --network {net} --subnet-range "
                                 f"{cidr} --gateway {cidr.network_address + 1} "
                                 f"--dns-nameserver {spec.provider.gateway} "
                                 f"{PREFIX}-selfservice", demo, "subnet delete {id}")
            router = self.create("router", f"router create {PREFIX}-router", demo,
                                 "router delete {id}")
            self.ids["router"] = router
            # recorded before they are made: a call that timed out on the node may still have
            # made it (router add subnet on the e2e controller), and then the router, subnet
            # and network could not be deleted; undoing one never made is "not found"
            self.record("router gateway", router, demo, f"router unset --external-gateway "
                                                         f"{router}")
            self.openstack(f"router set --external-gateway {self.ids['provider']} {router}",
                           demo, "router set --external-gateway")
            self.record("router interface", subnet, demo,
                        f"router remove subnet {router} {subnet}")
            self.openstack(f"router add subnet {router} {subnet}", demo, "router add subnet")
            sg = self.create("security group", f"security group create {PREFIX}-sg", demo,
                             "security group delete {id}")
            self.ids["sg"] = sg
            self.openstack(f"security group rule create --proto icmp {sg} -f json", demo,
                           "security group rule (ICMP)")
            self.openstack(f"security group rule create --proto tcp --dst-port 22 {sg} -f json",
                           demo, "security group rule (SSH)")
            pub = f"{REMOTE_TMP}/{PREFIX}-key.pub"
            self.lab.controller.put(pub, (self.lab.public_key.strip() + "\n").encode(),
                                    timeout=self.t.command)
            out = self.openstack(f"keypair create --public-key {pub} {PREFIX}-key -f json",
                                 demo, "keypair create")
            self.record("keypair", f"{PREFIX}-key", demo, f"keypair delete {PREFIX}-key")
            self.sh(f"rm -f {pub}")
            d.append(f"{cidr} routed to the provider network; ICMP+SSH allowed; keypair "
                     f"{field_of(out, 'fingerprint', 'keypair create')}")

    # -- 4. instance --

    def check_instance(self) -> None:
        g = "instance"
        label = self.lab.instance.label
        if not self.needs(f"instance: boot {label}", g, "image", "network"):
            return
        demo = openrc.DEMO
        with self.row(f"instance: boot {label}", g) as d:
            flavor = self.ensure_flavor()
            server = self.create(
                "server", f"server create --flavor {flavor} --image {self.ids['image']} "
                f"--nic net-id={self.ids['selfservice']} --security-group {self.ids['sg']} "
                f"--key-name {PREFIX}-key {PREFIX}-vm", demo, "server delete --wait {id}")
            self.ids["server"] = server
            done, out = self.poll("server show", self.t.server_active,
                                  f"server show {server} -f json", openrc.ADMIN,
                                  lambda out: parse_server(out).status in ("ACTIVE", "ERROR"),
                                  waiting=f"server {server} to become ACTIVE")
            state = parse_server(out)
            if state.status != "ACTIVE":
                what = (f"server {state.status}: {state.fault}" if done else
                        f"server still {state.status} after {self.t.server_active:.0f}s")
                raise CheckFailed(what + self.compute_log(state.host),
                                  "the fault above; /var/log/nova/nova-compute.log on the "
                                  "compute node, nova-scheduler.log and nova-conductor.log on "
                                  "the controller")
            self.ids["fixed_ip"] = state.fixed_ips[0] if state.fixed_ips else ""
            self.ids["host"] = state.host
            d.append(f"ACTIVE on {state.host or '?'} at {self.ids['fixed_ip']}")
        if g in self.failed_groups:
            return
        with self.row("instance: console login prompt", g) as d:
            done, log = self.poll("console log show", self.t.boot,
                                  f"console log show {server}", demo,
                                  lambda out: parse_console(out).ok,
                                  waiting=f"the login prompt on server {server}'s console")
            if not done:
                verdict = parse_console(log)
                raise CheckFailed(verdict.details, verdict.hint)
            keys = console_host_keys(log)
            self.ids["host_key"] = keys[0] if keys else ""
            d.append("login prompt" + (f"; host key {keys[0].split()[0]} pinned" if keys
                                       else "; no host keys printed"))
        with self.row("instance: floating IP, ping, SSH", g) as d:
            out = self.openstack(f"floating ip create --description {TAG} --tag {TAG} "
                                 f"{self.ids['provider']} -f json", demo, "floating ip create")
            fip = str(field_of(out, "floating_ip_address", "floating ip create"))
            self.record("floating ip", str(field_of(out, "id", "floating ip create")), demo,
                        f"floating ip delete {field_of(out, 'id', 'floating ip create')}")
            self.ids["fip"] = fip
            self.openstack(f"server add floating ip {server} {fip}", demo,
                           "server add floating ip")
            def answers() -> bool:
                pinged = self.sh(f"ping -c 1 -W 2 {fip}", 30, self.lab.host)
                if pinged.returncode == NOT_FOUND:
                    # not "no answer": the e2e host had no ping, and the row said so for 180 s
                    raise CheckFailed("ping is not installed on this host, so the floating IP "
                                      "could not be tried", "install iputils-ping "
                                      "(scripts/setup-host.sh does)")
                return pinged.ok

            if not self.wait(f"floating IP {fip} to answer ping from this host", self.t.reach,
                             answers):
                raise CheckFailed(f"no answer to ping {fip} from the host"
                                  + self.router_ping(), "the provider bridge on the host, the "
                                  "router's gateway (openstack router show), the L3 agent's "
                                  "log /var/log/neutron/l3-agent.log")
            d.append(f"{fip} answers ping")
            if not self.ids.get("host_key"):
                raise CheckFailed(f"{label} printed no SSH host key on its console",
                                  "read `openstack console log show`; SSH is not tried without "
                                  "a host key to pin")
            result = self.guest_run("cat /proc/partitions", self.t.reach)
            if not result.ok:
                user = self.lab.instance.user
                raise CheckFailed(f"SSH to {user}@{fip}: {result.stderr.strip()[:200]}",
                                  "the keypair (openstack keypair show), the security group "
                                  "rule for port 22, the metadata agent (the instance fetches the "
                                  "key from it)")
            self.ids["partitions"] = result.stdout
            d.append(f"SSH as {self.lab.instance.user} with the lab key")

    def guest_run(self, command: str, timeout: float) -> Result:
        """Run ``command`` in the instance over SSH (cirros, the lab key, the host key from
        its console pinned), retrying the connection until ``timeout``."""
        last = [Result(command, -1, "", "not tried")]

        def attempt() -> bool:
            try:
                if self._guest is None:
                    self._guest = self.lab.guest(self.ids["fip"], self.ids["host_key"])
                last[0] = self._guest.run(command, timeout=60.0, secrets=self.lab.secrets)
            except OslabError as exc:
                self._guest = None
                last[0] = Result(command, -1, "", exc.message)
            return last[0].ok

        self.wait(f"SSH to {self.lab.instance.user}@{self.ids['fip']}", timeout, attempt)
        return last[0]

    def ensure_flavor(self) -> str:
        flavor, ram, disk = self.lab.instance.flavor()
        exists = self.sh(self.osc(openrc.ADMIN, f"flavor show {flavor} -f json"))
        if not exists.ok:
            self.openstack(f"flavor create --vcpus 1 --ram {ram} --disk {disk} {flavor} -f json",
                           openrc.ADMIN, "flavor create")
            self.record("flavor", flavor, openrc.ADMIN, f"flavor delete {flavor}")
        return flavor

    def compute_log(self, host: str, errors: bool = False) -> str:
        """The end of nova-compute.log on ``host`` (every compute node if unknown); with
        ``errors``, only its last error lines (a detach that failed logs an ERROR among a
        warning a minute), not the tracebacks under them."""
        nodes = {host: self.lab.computes[host]} if host in self.lab.computes else \
            dict(self.lab.computes)
        log = "/var/log/nova/nova-compute.log"
        command = (f"grep -E ' (ERROR|CRITICAL) [A-Za-z0-9_.]+ \\[' {log} | tail -n 3 | "
                   "cut -c1-400" if errors else f"tail -n 15 {log}")
        parts = []
        for name, runner in nodes.items():
            out = self.sh(command, 30, runner)
            text = out.stdout.strip() or out.stderr.strip()
            title = "errors in nova-compute.log" if errors else "nova-compute.log"
            parts.append(f"\n{title} on {name}:\n" + "\n".join(
                "  | " + line for line in text.splitlines()))
        return "".join(parts)

    def router_ping(self) -> str:
        fixed = self.ids.get("fixed_ip", "")
        router = self.ids.get("router", "")
        if not (fixed and router):
            return ""
        inside = self.sh(f"ip netns exec qrouter-{router} ping -c 2 -W 2 {fixed}", 30)
        if inside.returncode == NOT_FOUND:
            return "; ping is not installed on the controller, so the router's side was not tried"
        return ("; from the router's namespace on the controller the instance answers, so the "
                "provider side (floating IP, gateway, host bridge) is at fault" if inside.ok
                else "; it does not answer inside the router's namespace either (DHCP, the "
                     "instance's network, the OVS agent)")

    # -- 5. volume --

    def check_volume(self) -> None:
        g = "volume"
        if not self.needs("volume: attach, see, detach", g, "instance"):
            return
        demo = openrc.DEMO
        server = self.ids["server"]
        with self.row("volume: attach, see, detach", g) as d:
            vol = self.create("volume", f"volume create --size 1 {PREFIX}-vol", demo,
                              "volume delete {id}")
            self.wait_volume(vol, "available")
            self.openstack(f"server add volume {server} {vol}", demo, "server add volume")
            self.record("attachment", vol, demo, f"server remove volume {server} {vol}")
            self.wait_volume(vol, "in-use")
            device = parse_volume_attachment(
                self.openstack(f"volume show {vol} -f json", demo), server) or "/dev/vdb"
            seen = [Verdict(False, "not tried")]

            def inside() -> bool:
                seen[0] = parse_partitions(self.guest_run("cat /proc/partitions", 60).stdout,
                                           device)
                return seen[0].ok

            if not self.wait(f"{device} in the instance's /proc/partitions", self.t.volume,
                             inside):
                raise CheckFailed(seen[0].details, seen[0].hint)
            d.append(seen[0].details)
            self.openstack(f"server remove volume {server} {vol}", demo, "server remove volume")
            self.ledger.remove(next(i for i in self.ledger.items if i.kind == "attachment"))
            self.wait_volume(vol, "available")
            d.append("detached")

    def wait_volume(self, vol: str, want: str) -> None:
        def ready(out: str) -> bool:
            status = str(field_of(out, "status", "volume show"))
            if status.startswith("error"):
                raise CheckFailed(f"volume {status}", "/var/log/cinder/volume.log on the "
                                  "controller; vgs cinder-volumes; targetcli ls")
            return status == want

        done, out = self.poll("volume show", self.t.volume, f"volume show {vol} -f json",
                              openrc.DEMO, ready, waiting=f"volume {vol} to become {want}")
        if not done:
            raise CheckFailed(f"volume still {field_of(out, 'status', 'volume show')} "
                              f"(want {want}) after {self.t.volume:.0f}s"
                              + self.compute_log(self.ids.get("host", ""), errors=True),
                              "nova-compute's errors above; /var/log/cinder/volume.log and "
                              "api.log on the controller")

    # -- 6. dashboard --

    def check_dashboard(self) -> None:
        url = dashboard_url(self.lab.spec)
        with self.row("dashboard", "dashboard") as d:
            # Django loads on the first request: under TCG that alone can outlast 30 s
            verdict = self.until(f"the dashboard's login page at {url}", self.t.settle,
                                 lambda: parse_dashboard(*self.lab.http(url, 60.0), self.layer),
                                 f"{url}: ")
            d.append(f"{url}: {verdict.details}")
        name = "dashboard: demo logs in, the instances page"
        if not self.lab.demo_password:
            self.skip(name, "no demo password given")
        elif self.needs(name, "dashboard", "dashboard"):
            with self.row(name, "dashboard") as d:
                d.extend(self.dashboard_login(url))

    def dashboard_login(self, url: str) -> list[str]:
        """Log in to Horizon as the demo user, as a browser does (the form's CSRF token and
        its cookie, then the session cookie), and open the project's instances page, which
        must list verify's instance when the instance checks made one."""
        web = self.lab.web()
        # the login goes straight on to the instances page (as after a link to it), not to
        # the project overview, whose usage and quota calls took 5 min on the TCG controller
        # of a loaded host (Apache's 504)
        instances = urlsplit(url).path + INSTANCES_PATH
        page = web.get(f"{url}{LOGIN_PATH}?next={quote(instances)}", self.t.command)
        form = login_form(page)
        if form is None:
            bad = not_answering(page, self.layer) or Verdict(
                False, f"no login form at {page.url}", "")
            raise CheckFailed(bad.details + self.web_log(page), bad.hint)
        user = openrc.credentials(openrc.DEMO).user
        fields = login_fields(form, user, self.lab.demo_password)
        if "next" in fields:
            fields["next"] = instances
        page = web.post(form.action, fields, self.t.command)
        went_on = urlsplit(page.url).path == instances
        if went_on and page.status >= 400:  # logged in; the instances page itself failed
            login = Verdict(True, f"logged in ({instances})")
        else:
            login = parse_login(page, self.layer)
        if not login.ok:
            raise CheckFailed(f"{user}: {login.details}{self.web_log(page)}", login.hint)
        server = f"{PREFIX}-vm" if "server" in self.ids else ""
        if not went_on:  # a login that did not go on to the instances page: ask for it
            page = web.get(url + INSTANCES_PATH, self.t.command)
        listed = parse_instances(page, server, self.layer)
        if not listed.ok:
            raise CheckFailed(listed.details + self.web_log(page), listed.hint)
        return [f"{user}: {login.details}", listed.details]

    def web_log(self, page: Page) -> str:
        """After a server error, the last lines of the web server's error log."""
        if page.status < 500:
            return ""
        tail = self.sh(f"tail -n 5 {self.layer.path('web-log')}")
        lines = " | ".join(line.strip() for line in tail.stdout.splitlines() if line.strip())
        return f"; {self.layer.path('web-log')} ends: {lines}" if lines else ""


def dashboard_url(spec: LabSpec) -> str:
    return f"http://{spec.controller.address}/dashboard/"

