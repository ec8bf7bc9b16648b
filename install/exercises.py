"""The break-and-fix exercises `oslab exercise` offers: the traps of the install guide that
people installing OpenStack by hand meet, one fault each, as data (``oslab.install.exercise``).

Each fault is what a person really does (a placeholder left in, an old guide's value, a typo,
a step skipped), never a service merely stopped. The symptom is what they then see. The fix
undoes the fault exactly (a unit test runs both over the files oslab renders), and the
checks decide from the cloud's behaviour (verify groups), the files (lint) or a probe.
"""

from __future__ import annotations

from oslab.distro import Family
from oslab.install.exercise import Change, Edit, Exercise, FileRef, Probe, Run
from oslab.install.model import Where
from oslab.install.openrc import KEYSTONE_PORT
from oslab.spec import Scope

C, N = Where.CONTROLLER, Where.COMPUTE
KEYSTONE_CONF = FileRef(C, "/etc/keystone/keystone.conf")
LIMITS = FileRef(C, "/etc/systemd/system/mariadb.service.d/oslab-limits.conf")
MARIADB_CNF = FileRef(C, "mariadb.cnf")
GLANCE_CONF = FileRef(C, "/etc/glance/glance-api.conf")
PLACEMENT_CONF = FileRef(C, "/etc/placement/placement.conf")
PLACEMENT_HTTPD = FileRef(C, "/etc/httpd/conf.d/00-placement-api.conf")
COMPUTE_NOVA = FileRef(N, "/etc/nova/nova.conf")
METADATA_INI = FileRef(C, "/etc/neutron/metadata_agent.ini")
COMPUTE_OVS = FileRef(N, "/etc/neutron/plugins/ml2/openvswitch_agent.ini")
CINDER_CONF = FileRef(C, "/etc/cinder/cinder.conf")
HORIZON = FileRef(C, "horizon-settings")
ADMIN = ". /root/admin-openrc && "


def swap(file: FileRef, old: str, new: str, section: str = "") -> tuple[Edit, Edit]:
    """The fault's edit and the fix's, which undoes it."""
    return Edit(file, old, new, section), Edit(file, new, old, section)


def restart(where: Where, units: str, port: int = 0, wait: bool = True) -> Run:
    """Restart ``units``; with ``port``, then wait (5 min at most) until something answers
    HTTP there: a check run at once would otherwise meet the API still starting (under TCG,
    tens of seconds after systemd says it started). ``wait=False`` only queues the restart,
    for a fault that keeps the unit from ever becoming ready."""
    if not wait:
        return Run(where, f"systemctl restart --no-block {units}")
    if not port:
        return Run(where, f"systemctl restart {units}")
    answers = ('python3 -c "import http.client as h, sys; c = h.HTTPConnection(sys.argv[1], '
               f"timeout=10); c.request('GET', '/'); c.getresponse()\" localhost:{port}")
    return Run(where, f"systemctl restart {units} && for _ in $(seq 100); do "
                      f"{answers} 2>/dev/null && break; sleep 3; done && {answers}")


_db_fault, _db_fix = swap(KEYSTONE_CONF, "connection = mysql+pymysql://",
                          "connection =\n#mysql+pymysql://", "database")
_limit_fault, _limit_fix = swap(LIMITS, "LimitNOFILE=65535", "LimitNOFILE=1024")
_bind_fault, _bind_fix = swap(MARIADB_CNF, "bind-address = ",
                              "bind-address = 127.0.0.1\n#bind-address = ", "mysqld")
_glance_fault, _glance_fix = swap(GLANCE_CONF, "username = glance\n", "username = glace\n",
                                  "keystone_authtoken")
_placement_fault, _placement_fix = swap(PLACEMENT_CONF, "@controller/placement",
                                        "@localhost/placement", "placement_database")
_grant_fault, _grant_fix = swap(
    PLACEMENT_HTTPD, "<Directory /usr/bin>\n    <IfVersion >= 2.4>\n      Require all granted\n",
    "<Directory /usr/bin>\n    <IfVersion >= 2.4>\n")
_my_ip_fault, _my_ip_fix = swap(COMPUTE_NOVA, "my_ip = ",
                                "my_ip = MANAGEMENT_INTERFACE_IP_ADDRESS\n#my_ip = ", "DEFAULT")
_rabbit_fault, _rabbit_fix = swap(COMPUTE_NOVA, "@controller:5672/", "@localhost:5672/",
                                  "DEFAULT")
_region_fault, _region_fix = swap(COMPUTE_NOVA, "region_name = RegionOne",
                                  "region_name = regionOne", "placement")
_secret_fault, _secret_fix = swap(METADATA_INI, "metadata_proxy_shared_secret = ",
                                  "metadata_proxy_shared_secret = METADATA_SECRET\n"
                                  "#metadata_proxy_shared_secret = ")
_bridge_fault, _bridge_fix = swap(COMPUTE_OVS, "bridge_mappings = provider:br-provider",
                                  "bridge_mappings = provider:br-ex")
_vg_fault, _vg_fix = swap(CINDER_CONF, "volume_group = cinder-volumes",
                          "volume_group = cinder-volume", "lvm")
_url_fault, _url_fix = swap(HORIZON, '"http://%s:5000/v3"', '"http://%s/identity/v3"')

MAX_CONNECTIONS = 4096  # the rendered MariaDB config's max_connections (a unit test holds it)
KEYSTONE_RESTART = restart(C, "{units:keystone}", KEYSTONE_PORT)
NOVA_COMPUTE_RESTART = restart(N, "{units:nova-compute}")
# nova-compute's unit is Type=notify (Debian's and RDO's): broken, it never says it is ready,
# and `systemctl restart` would wait out its start timeout (30 min under oslab's TCG drop-in;
# the e2e's nova-transport-url fault hit the exercise's 15 min bound). A fault only queues it.
NOVA_COMPUTE_BREAK = restart(N, "{units:nova-compute}", wait=False)
TOKEN = Probe(C, "the admin gets a token", ADMIN + "openstack token issue -f value -c id",
              timeout=600)

CATALOG: tuple[Exercise, ...] = (
    Exercise(
        name="keystone-database", service="keystone", scope=Scope.IDENTITY,
        task="Keystone fails every request. Make `openstack token issue` work again.",
        symptom="`openstack token issue` on the controller: \"Internal Server Error (HTTP "
                "500)\"; keystone's log: \"ArgumentError: Could not parse SQLAlchemy URL from "
                "given URL string\" (older releases: \"Could not parse rfc1738 URL from "
                "string ''\").",
        fault=Change((_db_fault,), (KEYSTONE_RESTART,)),
        fix=Change((_db_fix,), (KEYSTONE_RESTART,)),
        fix_text="In /etc/keystone/keystone.conf, [database] connection must be "
                 "mysql+pymysql://keystone:KEYSTONE_DBPASS@controller/keystone (the line "
                 "under it holds the value, commented out). Then restart keystone.",
        hints=("Keystone starts, so the trouble is in what it reads on each request. Its log "
               "is in /var/log/keystone/.",
               "The error is about a database URL: look at the [database] section of "
               "/etc/keystone/keystone.conf.",
               "`connection =` is empty. Give it the install guide's value, "
               "mysql+pymysql://keystone:KEYSTONE_DBPASS@controller/keystone, and restart "
               "the keystone service."),
        verify=("identity",), lint=(KEYSTONE_CONF,)),
    Exercise(
        name="keystone-fernet-keys", service="keystone", scope=Scope.IDENTITY,
        task="No one can log in any more. Make `openstack token issue` work again.",
        symptom="`openstack token issue`: \"Internal Server Error (HTTP 500)\"; keystone's "
                "log names a key repository that does not exist.",
        fault=Change((), (Run(C, "rm -rf /etc/keystone/fernet-keys"), KEYSTONE_RESTART)),
        fix=Change((), (Run(C, "keystone-manage fernet_setup --keystone-user keystone "
                               "--keystone-group keystone"), KEYSTONE_RESTART)),
        fix_text="Create the Fernet key repository again, as the install guide does: "
                 "`keystone-manage fernet_setup --keystone-user keystone --keystone-group "
                 "keystone`, then restart keystone.",
        hints=("Tokens are what Keystone cannot make. Look in its log, /var/log/keystone/.",
               "Keystone signs tokens with Fernet keys, kept in /etc/keystone/fernet-keys/.",
               "The key repository is gone: `keystone-manage fernet_setup --keystone-user "
               "keystone --keystone-group keystone`, then restart keystone."),
        verify=("identity",),
        probes=(Probe(C, "Keystone has a primary Fernet key", "test -s "
                      "/etc/keystone/fernet-keys/0"),)),
    Exercise(
        name="mariadb-bind-address", service="mariadb", scope=Scope.IDENTITY,
        task="Keystone cannot reach its database. Make `openstack token issue` work again.",
        symptom="`openstack token issue`: \"Internal Server Error (HTTP 500)\"; keystone's "
                "log: \"(pymysql.err.OperationalError) (2003, \"Can't connect to MySQL server "
                "on 'controller' ([Errno 111] Connection refused)\")\".",
        fault=Change((_bind_fault,), (Run(C, "systemctl restart mariadb"),)),
        fix=Change((_bind_fix,), (Run(C, "systemctl restart mariadb"),)),
        fix_text="The services reach MariaDB at the controller's management address: "
                 "bind-address in MariaDB's OpenStack config (the install guide's openstack.cnf"
                 ") must be that address, not 127.0.0.1. Then restart mariadb.",
        hints=("MariaDB runs: `systemctl status mariadb`. Can the services reach it?",
               "Where does it listen? `ss -ltnp | grep 3306`",
               "bind-address is 127.0.0.1 in MariaDB's OpenStack config (the line under it "
               "has the management address): put that back, restart mariadb."),
        verify=("identity",),
        probes=(Probe(C, "MariaDB answers on the controller's management address",
                      'python3 -c "import socket, sys; socket.create_connection((sys.argv[1], '
                      '3306), 10)" {controller}'),)),
    Exercise(
        name="mariadb-open-files", service="mariadb", scope=Scope.IDENTITY,
        # EL9's MariaDB 10.5 lowers max_connections to fit the open-files limit; Debian 13's
        # 11.8 kept max_connections = 4096 under LimitNOFILE=1024 (the CI run of this
        # exercise), so there the trap is not
        families=(Family.EL,),
        task="Under load the services lose their database. Give MariaDB the connections "
             "the cloud needs.",
        symptom="Services log \"(pymysql.err.OperationalError) (1040, 'Too many "
                "connections')\" once the cloud is busy, though MariaDB's config says "
                f"max_connections = {MAX_CONNECTIONS}.",
        fault=Change((_limit_fault,), (Run(C, "systemctl daemon-reload && systemctl restart "
                                              "mariadb"),)),
        fix=Change((_limit_fix,), (Run(C, "systemctl daemon-reload && systemctl restart "
                                          "mariadb"),)),
        fix_text="MariaDB lowers max_connections to fit the open files systemd allows it. "
                 "Set LimitNOFILE=65535 in the mariadb unit's drop-in (/etc/systemd/system/"
                 "mariadb.service.d/oslab-limits.conf), then `systemctl daemon-reload` and "
                 "restart mariadb.",
        hints=("Ask MariaDB itself: `mysql -e \"SELECT @@max_connections\"`. Is it what the "
               "config file says?",
               "MariaDB's log at its start says it changed its limits. What limit does "
               "systemd give the service? (`systemctl show mariadb -p LimitNOFILE`)",
               "The drop-in /etc/systemd/system/mariadb.service.d/oslab-limits.conf gives it "
               "1024 open files. Set LimitNOFILE=65535, `systemctl daemon-reload`, restart "
               "mariadb."),
        probes=(Probe(C, f"MariaDB allows {MAX_CONNECTIONS} connections",
                      f'test "$(mysql -N -B -e "SELECT @@max_connections")" -ge '
                      f"{MAX_CONNECTIONS}"),)),
    Exercise(
        name="rabbitmq-permissions", service="rabbitmq", scope=Scope.IDENTITY,
        task="The services cannot use the message queue. Let the openstack user in again.",
        symptom="The services' logs: \"ACCESS_REFUSED - access to vhost '/' refused for user "
                "'openstack'\"; compute services report down.",
        fault=Change((), (Run(C, "rabbitmqctl clear_permissions -p / openstack"),)),
        fix=Change((), (Run(C, "rabbitmqctl set_permissions -p / openstack '.*' '.*' '.*'"),)),
        fix_text="Give the openstack user its permissions again, as the install guide does: "
                 "`rabbitmqctl set_permissions openstack \".*\" \".*\" \".*\"`.",
        hints=("The user exists and its password is right: what else does RabbitMQ check?",
               "`rabbitmqctl list_user_permissions openstack`",
               "The user has no permissions on the vhost /: `rabbitmqctl set_permissions "
               "openstack \".*\" \".*\" \".*\"`."),
        probes=(Probe(C, "the openstack user may configure, write and read everything on /",
                      "rabbitmqctl -q list_user_permissions openstack | "
                      "grep -Eq '^/[[:space:]]+\\.\\*[[:space:]]+\\.\\*[[:space:]]+\\.\\*'",
                      timeout=600),)),
    Exercise(
        name="glance-service-user", service="glance",
        task="Nobody can list or upload images. Make the Image service accept tokens again.",
        symptom="`openstack image list`: \"HTTP 503 Service Unavailable\"; glance-api's "
                "log: \"Identity server rejected authorization necessary to fetch token "
                "data\".",
        fault=Change((_glance_fault,), (restart(C, "{units:glance}", 9292),)),
        fix=Change((_glance_fix,), (restart(C, "{units:glance}", 9292),)),
        fix_text="In /etc/glance/glance-api.conf, [keystone_authtoken] username must be "
                 "glance (the user `openstack user create ... glance` made). Then restart "
                 "glance-api.",
        hints=("glance-api starts; it is Keystone that says no. Which user does glance-api "
               "log in as?",
               "Look at the [keystone_authtoken] section of /etc/glance/glance-api.conf; "
               "`oslab lint --service glance` checks that its user can log in.",
               "[keystone_authtoken] username is misspelt: it is glance. Restart glance-api."),
        verify=("image",), lint=(GLANCE_CONF,)),
    Exercise(
        name="placement-database", service="placement",
        task="Placement answers every request with an error. Make `openstack resource "
             "provider list` work.",
        symptom="`openstack resource provider list`: \"Internal Server Error (HTTP 500)\"; "
                "nova-compute's log: \"Failed to retrieve resource provider tree from "
                "placement API\".",
        fault=Change((_placement_fault,), (restart(C, "{units:placement}", 8778),)),
        fix=Change((_placement_fix,), (restart(C, "{units:placement}", 8778),)),
        fix_text="In /etc/placement/placement.conf, [placement_database] connection must "
                 "name the controller: mysql+pymysql://placement:PLACEMENT_DBPASS@controller/"
                 "placement. MariaDB listens on the management address only.",
        hints=("Placement's own log says what it cannot reach.",
               "Where does MariaDB listen? (`ss -ltn`, or bind-address in its config)",
               "[placement_database] connection points at localhost: make it @controller, "
               "and restart placement."),
        lint=(PLACEMENT_CONF,),
        probes=(Probe(C, "placement lists its resource providers",
                      ADMIN + "openstack resource provider list -f value -c uuid",
                      timeout=600),)),
    Exercise(
        name="placement-directory", service="placement", families=(Family.EL,),
        task="The install guide's placement check fails. Make `openstack resource class "
             "list` work.",
        symptom="`openstack resource class list`: \"Forbidden (HTTP 403)\"; httpd's error "
                "log: \"AH01630: client denied by server configuration: /usr/bin/placement-"
                "api\".",
        fault=Change((_grant_fault,), (restart(C, "{units:placement}", 8778),)),
        fix=Change((_grant_fix,), (restart(C, "{units:placement}", 8778),)),
        fix_text="Apache must be allowed to run /usr/bin/placement-api: in /etc/httpd/conf.d/"
                 "00-placement-api.conf, inside <Directory /usr/bin>, put `Require all "
                 "granted`. Then restart httpd.",
        hints=("403 comes from Apache, before Placement runs at all.",
               "Look at the <Directory> blocks of /etc/httpd/conf.d/00-placement-api.conf.",
               "<Directory /usr/bin> needs `Require all granted` (the packaging bug the "
               "install guide works around). Restart httpd."),
        probes=(Probe(C, "placement lists its resource classes",
                      ADMIN + "openstack resource class list -f value -c name", timeout=600),
                Probe(C, "Apache may run /usr/bin/placement-api",
                      "grep -q 'Require all granted' /etc/httpd/conf.d/00-placement-api.conf")
                )),
    Exercise(
        name="nova-my-ip", service="nova",
        task="The compute node's compute service is down. Bring it back.",
        symptom="`openstack compute service list`: nova-compute on the compute node is "
                "down; its log: \"Value for option server_proxyclient_address is not valid: "
                "MANAGEMENT_INTERFACE_IP_ADDRESS is not a valid host address\".",
        fault=Change((_my_ip_fault,), (NOVA_COMPUTE_BREAK,)),
        fix=Change((_my_ip_fix,), (NOVA_COMPUTE_RESTART,)),
        fix_text="The install guide's placeholder was left in: my_ip in the compute node's "
                 "/etc/nova/nova.conf must be its management address. Restart nova-compute.",
        hints=("Read nova-compute's log on the compute node: which option is not valid?",
               "server_proxyclient_address is $my_ip: what is my_ip?",
               "[DEFAULT] my_ip still holds the guide's placeholder: set it to the node's "
               "management address (`oslab lint` names it) and restart nova-compute."),
        verify=("services",), lint=(COMPUTE_NOVA,)),
    Exercise(
        name="nova-transport-url", service="nova",
        task="The compute node's compute service is down. Bring it back.",
        symptom="`openstack compute service list`: nova-compute on the compute node is "
                "down; its log: \"AMQP server on localhost:5672 is unreachable: [Errno 111] "
                "ECONNREFUSED\".",
        fault=Change((_rabbit_fault,), (NOVA_COMPUTE_BREAK,)),
        fix=Change((_rabbit_fix,), (NOVA_COMPUTE_RESTART,)),
        fix_text="RabbitMQ runs on the controller: transport_url in the compute node's "
                 "/etc/nova/nova.conf must be rabbit://openstack:RABBIT_PASS@controller:5672/."
                 " Restart nova-compute.",
        hints=("nova-compute starts, then cannot talk to the rest of nova. How do nova's "
               "services talk to each other?",
               "Through RabbitMQ, on the controller. Where does the compute node look for it?",
               "[DEFAULT] transport_url on the compute node points at localhost: make it "
               "@controller:5672/ and restart nova-compute."),
        verify=("services",), lint=(COMPUTE_NOVA,)),
    Exercise(
        name="nova-placement-region", service="placement",
        task="New instances cannot be scheduled on the compute node. Find out why.",
        symptom="nova-compute's log on the compute node: \"No endpoint for placement in "
                "region regionOne\"; new instances fail with \"No valid host was found\".",
        fault=Change((_region_fault,), (NOVA_COMPUTE_BREAK,)),
        fix=Change((_region_fix,), (NOVA_COMPUTE_RESTART,)),
        fix_text="Region names are case-sensitive: [placement] region_name in the compute "
                 "node's /etc/nova/nova.conf must be RegionOne, the region of the catalog "
                 "(`openstack region list`). Restart nova-compute.",
        hints=("nova-compute reports its resources to placement. Can it find placement?",
               "It looks placement up in the catalog, by region: `openstack endpoint list "
               "--service placement`.",
               "[placement] region_name says regionOne; the catalog's region is RegionOne."),
        lint=(COMPUTE_NOVA,)),
    Exercise(
        name="neutron-metadata-secret", service="neutron",
        task="Instances boot, but get no SSH key and no hostname. Fix their metadata.",
        symptom="The instance's console: cloud-init cannot read "
                "http://169.254.169.254/openstack (\"403 Forbidden\"); nova's metadata API "
                "log: \"X-Instance-ID-Signature ... does not match the expected value\".",
        fault=Change((_secret_fault,), (restart(C, "neutron-metadata-agent"),)),
        fix=Change((_secret_fix,), (restart(C, "neutron-metadata-agent"),)),
        fix_text="The metadata agent and nova sign with one shared secret: "
                 "metadata_proxy_shared_secret in /etc/neutron/metadata_agent.ini must be "
                 "the one in the [neutron] section of the controller's /etc/nova/nova.conf. "
                 "Restart neutron-metadata-agent.",
        hints=("The metadata requests reach nova, and nova refuses them. Who signs them?",
               "Compare metadata_proxy_shared_secret in /etc/neutron/metadata_agent.ini and "
               "in /etc/nova/nova.conf (`oslab lint` compares them).",
               "metadata_agent.ini still holds the guide's placeholder METADATA_SECRET: use "
               "nova.conf's value and restart neutron-metadata-agent."),
        lint=(METADATA_INI, FileRef(C, "/etc/nova/nova.conf"))),
    Exercise(
        name="neutron-bridge-mapping", service="neutron",
        task="The compute node's Open vSwitch agent is down. Bring it back.",
        symptom="`openstack network agent list`: the Open vSwitch agent on the compute node "
                "is down; its log: \"Bridge br-ex for physical network provider does not "
                "exist. Agent terminated!\"",
        fault=Change((_bridge_fault,), (restart(N, "neutron-openvswitch-agent"),)),
        fix=Change((_bridge_fix,), (restart(N, "neutron-openvswitch-agent"),)),
        fix_text="bridge_mappings in the compute node's /etc/neutron/plugins/ml2/"
                 "openvswitch_agent.ini must name the provider bridge that exists there, "
                 "br-provider (`ovs-vsctl list-br`). Restart neutron-openvswitch-agent.",
        hints=("The agent's log says what it looked for.",
               "Which bridges does Open vSwitch have on the node? `ovs-vsctl list-br`",
               "[ovs] bridge_mappings says provider:br-ex; the node's bridge is br-provider."),
        verify=("services",),
        probes=(Probe(N, "the bridge in bridge_mappings exists",
                      "b=$(sed -n 's/^bridge_mappings = provider://p' "
                      "/etc/neutron/plugins/ml2/openvswitch_agent.ini) && "
                      'ovs-vsctl br-exists "$b" || ! echo "Open vSwitch has no bridge '
                      '\'$b\'"'),)),
    Exercise(
        name="cinder-volume-group", service="cinder",
        task="New volumes go to error. Make the volume service work again.",
        symptom="`openstack volume service list`: cinder-volume is down; its log: "
                "\"Volume Group cinder-volume does not exist\".",
        fault=Change((_vg_fault,), (restart(C, "{units:cinder-volume}"),)),
        fix=Change((_vg_fix,), (restart(C, "{units:cinder-volume}"),)),
        fix_text="volume_group in the [lvm] section of /etc/cinder/cinder.conf must be the "
                 "volume group the install guide made, cinder-volumes (`vgs`). Restart "
                 "cinder-volume.",
        hints=("cinder-volume's log says why its LVM driver did not start.",
               "Which volume groups does the controller have? `vgs`",
               "[lvm] volume_group says cinder-volume; the group is cinder-volumes."),
        verify=("services",),
        probes=(Probe(C, "the volume group in cinder.conf exists",
                      "vgs \"$(sed -n 's/^volume_group = //p' /etc/cinder/cinder.conf)\""),)),
    Exercise(
        name="horizon-keystone-url", service="horizon",
        task="Nobody can log in to the dashboard. Fix it.",
        symptom="The dashboard's login page: \"An error occurred authenticating. Please try "
                "again later.\" (or \"Unable to establish connection to keystone "
                "endpoint.\").",
        fault=Change((_url_fault,), (restart(C, "{units:web}"),)),
        fix=Change((_url_fix,), (restart(C, "{units:web}"),)),
        fix_text="OPENSTACK_KEYSTONE_URL in the dashboard's settings must be Keystone's own "
                 "URL, \"http://%s:5000/v3\" % OPENSTACK_HOST (a guide for another layout "
                 "says /identity/v3). Restart the web server.",
        hints=("The dashboard logs in through Keystone's API. Which URL does it use?",
               "Compare OPENSTACK_KEYSTONE_URL in the dashboard's settings with "
               "`openstack endpoint list --service identity`.",
               "OPENSTACK_KEYSTONE_URL says /identity/v3; Keystone answers at :5000/v3."),
        verify=("dashboard",)),
)
