#!/usr/bin/env python3
"""Soak client for orgql: mixed reads and writes, round-robin over several instances.

Standard library only. Each worker thread keeps one persistent HTTP/1.1 connection per
instance and alternates between them. The workload:

- setup: users sign up; a few organizations are created, every user is added to each with a
  random role and default dataset role, and each organization gets a few datasets;
- then, until the duration is over, each worker picks an operation at random:
  reads (viewer memberships, member lists, datasets with collaborators, a dataset by name),
  racing membership changes by random actors on shared organizations (promote, demote,
  remove, add back, leave, change the default dataset role), and dataset changes
  (create, add/update/remove collaborators, update, delete).

Refusals (FORBIDDEN, CONFLICT, NOT_FOUND, ...) are expected: actors are random. The report
counts requests, errors by code, HTTP 5xx, transport failures, and latency percentiles, and
prints one JSON line at the end (prefixed with `RESULT `) for run.sh.
"""

import argparse
import http.client
import json
import random
import sys
import threading
import time
from urllib.parse import urlparse

ORG_ROLES = ["MEMBER", "ADMIN"]
DATASET_ROLES = ["VIEWER", "LABELER", "REVIEWER", "MANAGER", "ADMIN"]
PASSWORD = "soak-password-1"


class Instance:
    def __init__(self, url):
        parsed = urlparse(url)
        self.host = parsed.hostname
        self.port = parsed.port
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(f"loopback only: {url}")


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.codes = {}
        self.status_5xx = 0
        self.transport = 0
        self.latencies = []
        self.by_instance = {}

    def record(self, instance, latency, status, codes, transport=False):
        with self.lock:
            self.requests += 1
            self.latencies.append(latency)
            self.by_instance[instance] = self.by_instance.get(instance, 0) + 1
            if transport:
                self.transport += 1
                return
            if status >= 500:
                self.status_5xx += 1
            # Requests answered with each code (a request with several errors of one code,
            # e.g. a list of datasets whose collaborators are hidden, counts once).
            for code in set(codes):
                self.codes[code] = self.codes.get(code, 0) + 1


class Client:
    """One worker's connections, one per instance, used round-robin."""

    def __init__(self, instances, stats, timeout=60):
        self.instances = instances
        self.stats = stats
        self.timeout = timeout
        self.conns = [None] * len(instances)
        self.next = random.randrange(len(instances))

    def _conn(self, i):
        if self.conns[i] is None:
            inst = self.instances[i]
            self.conns[i] = http.client.HTTPConnection(inst.host, inst.port, timeout=self.timeout)
        return self.conns[i]

    def gql(self, query, variables=None, token=None):
        i = self.next
        self.next = (self.next + 1) % len(self.instances)
        body = json.dumps({"query": query, "variables": variables or {}})
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        started = time.monotonic()
        for attempt in (0, 1):
            try:
                conn = self._conn(i)
                conn.request("POST", "/graphql", body, headers)
                response = conn.getresponse()
                raw = response.read()
                status = response.status
                break
            except (http.client.HTTPException, OSError) as e:
                # A kept-alive connection the server closed: retry once on a new one.
                if self.conns[i] is not None:
                    self.conns[i].close()
                self.conns[i] = None
                if attempt == 1:
                    self.stats.record(i, time.monotonic() - started, 0, [], transport=True)
                    print(f"transport error on instance {i}: {e!r}", file=sys.stderr)
                    return None
        latency = time.monotonic() - started
        try:
            reply = json.loads(raw)
        except ValueError:
            reply = {"errors": [{"message": raw[:200].decode("utf8", "replace")}]}
        codes = [
            (e.get("extensions") or {}).get("code", "<none>") for e in reply.get("errors") or []
        ]
        self.stats.record(i, latency, status, codes)
        if status >= 500:
            print(f"HTTP {status} from instance {i}: {raw[:300]!r}", file=sys.stderr)
        if "INTERNAL_SERVER_ERROR" in codes or "<none>" in codes:
            print(f"instance {i}: {query.split('(')[0][:60]} -> {reply}", file=sys.stderr)
        return reply


class World:
    """What the workers share: users and their tokens, organizations, known datasets, and
    who is believed to be an admin of each organization (from answers; races make it stale,
    which is the point: it only biases the choice of actors so that changes get through)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.tokens = {}
        self.orgs = []
        self.datasets = []  # full names (some may be gone)
        self.admins = {}  # organization -> set of usernames

    def user(self):
        with self.lock:
            name = random.choice(list(self.tokens))
            return name, self.tokens[name]

    def actor(self, org):
        """Mostly a believed admin of `org`, sometimes anyone."""
        with self.lock:
            admins = list(self.admins.get(org, ()))
            name = random.choice(admins) if admins and random.random() < 0.7 else random.choice(list(self.tokens))
            return name, self.tokens[name]

    def believe(self, org, user, admin):
        with self.lock:
            admins = self.admins.setdefault(org, set())
            if admin:
                admins.add(user)
            else:
                admins.discard(user)

    def dataset(self):
        with self.lock:
            return random.choice(self.datasets) if self.datasets else None

    def add_dataset(self, full_name):
        with self.lock:
            self.datasets.append(full_name)


def data(reply, *path):
    value = (reply or {}).get("data")
    for p in path:
        if value is None:
            return None
        value = value.get(p)
    return value


def setup(client, world, users, orgs, tag):
    for k in range(users):
        name = f"s{tag}u{k}"
        reply = client.gql(
            "mutation($i: SignUpInput!) { signUp(input: $i) { token } }",
            {"i": {"username": name, "email": f"{name}@example.com", "password": PASSWORD}},
        )
        token = data(reply, "signUp", "token")
        if not token:
            raise SystemExit(f"setup: sign-up failed: {reply}")
        world.tokens[name] = token
    names = list(world.tokens)
    for k in range(orgs):
        org = f"s{tag}o{k}"
        creator = names[k % len(names)]
        reply = client.gql(
            "mutation($o: String!) { createOrganization(input: { username: $o }) { organization { id } } }",
            {"o": org},
            world.tokens[creator],
        )
        if not data(reply, "createOrganization"):
            raise SystemExit(f"setup: createOrganization failed: {reply}")
        world.orgs.append(org)
        world.believe(org, creator, True)
        for name in names:
            if name == creator:
                continue
            role = random.choice(ORG_ROLES)
            client.gql(
                "mutation($o: String!, $u: String!, $r: OrganizationRole!, $d: DatasetRole) { addMember(input: { organization: $o, username: $u, role: $r, defaultDatasetRole: $d }) { member { role } } }",
                {
                    "o": org,
                    "u": name,
                    "r": role,
                    "d": random.choice(DATASET_ROLES + [None]),
                },
                world.tokens[creator],
            )
            world.believe(org, name, role == "ADMIN")
        for d in range(3):
            reply = client.gql(
                "mutation($o: String!, $n: String!, $p: Boolean!) { createDataset(input: { owner: $o, name: $n, public: $p }) { dataset { fullName } } }",
                {"o": org, "n": f"set{d}", "p": d == 0},
                world.tokens[creator],
            )
            full = data(reply, "createDataset", "dataset", "fullName")
            if full:
                world.add_dataset(full)


READS = [
    ("{ viewer { username memberships { role defaultDatasetRole organization { username } } } }", lambda w: {}),
    (
        "query($o: String!) { organization(username: $o) { viewerRole members(first: 50) { totalCount nodes { role user { username } } } } }",
        lambda w: {"o": random.choice(w.orgs)},
    ),
    (
        "query($o: String!) { organization(username: $o) { datasets(first: 20) { totalCount nodes { fullName viewerRole collaborators(first: 20) { totalCount nodes { role user { username } } } } } } }",
        lambda w: {"o": random.choice(w.orgs)},
    ),
    (
        "query($d: String!) { dataset(fullName: $d) { fullName public description viewerRole owner { username } } }",
        lambda w: {"d": w.dataset() or "none/none"},
    ),
    (
        "query($u: String!) { user(username: $u) { username datasets(first: 10) { totalCount } } }",
        lambda w: {"u": w.user()[0]},
    ),
]


def membership_change(client, world):
    org = random.choice(world.orgs)
    actor, token = world.actor(org)
    target, _ = world.user()
    op = random.randrange(6)
    if op == 0:
        role = random.choice(ORG_ROLES)
        reply = client.gql(
            "mutation($o: String!, $u: String!, $r: OrganizationRole!) { updateMember(input: { organization: $o, username: $u, role: $r }) { member { role } } }",
            {"o": org, "u": target, "r": role},
            token,
        )
        if data(reply, "updateMember"):
            world.believe(org, target, role == "ADMIN")
    elif op == 1:
        reply = client.gql(
            "mutation($o: String!, $u: String!) { removeMember(input: { organization: $o, username: $u }) { organization { id } } }",
            {"o": org, "u": target},
            token,
        )
        if data(reply, "removeMember"):
            world.believe(org, target, False)
    elif op in (2, 3):
        role = random.choice(ORG_ROLES)
        reply = client.gql(
            "mutation($o: String!, $u: String!, $r: OrganizationRole!, $d: DatasetRole) { addMember(input: { organization: $o, username: $u, role: $r, defaultDatasetRole: $d }) { member { role } } }",
            {"o": org, "u": target, "r": role, "d": random.choice(DATASET_ROLES + [None])},
            token,
        )
        if data(reply, "addMember"):
            world.believe(org, target, role == "ADMIN")
    elif op == 4:
        # A random member leaves (the actor is usually an admin: last-admin races).
        reply = client.gql(
            "mutation($o: String!) { leaveOrganization(input: { organization: $o }) { organization { id } } }",
            {"o": org},
            token,
        )
        if data(reply, "leaveOrganization"):
            world.believe(org, actor, False)
    else:
        client.gql(
            "mutation($o: String!, $u: String!, $d: DatasetRole) { updateMember(input: { organization: $o, username: $u, defaultDatasetRole: $d }) { member { defaultDatasetRole } } }",
            {"o": org, "u": target, "d": random.choice(DATASET_ROLES + [None])},
            token,
        )


def dataset_change(client, world, worker, counter):
    dataset = world.dataset()
    owner = dataset.split("/")[0] if dataset else random.choice(world.orgs)
    _, token = world.actor(owner)
    target, _ = world.user()
    op = random.randrange(8)
    if op == 0 or dataset is None:
        org = owner
        reply = client.gql(
            "mutation($o: String!, $n: String!) { createDataset(input: { owner: $o, name: $n }) { dataset { fullName } } }",
            {"o": org, "n": f"w{worker}-{counter}"},
            token,
        )
        full = data(reply, "createDataset", "dataset", "fullName")
        if full:
            world.add_dataset(full)
    elif op in (1, 2):
        client.gql(
            "mutation($d: String!, $u: String!, $r: DatasetRole!) { addCollaborator(input: { dataset: $d, username: $u, role: $r }) { collaborator { role } } }",
            {"d": dataset, "u": target, "r": random.choice(DATASET_ROLES)},
            token,
        )
    elif op == 3:
        client.gql(
            "mutation($d: String!, $u: String!, $r: DatasetRole!) { updateCollaborator(input: { dataset: $d, username: $u, role: $r }) { collaborator { role } } }",
            {"d": dataset, "u": target, "r": random.choice(DATASET_ROLES)},
            token,
        )
    elif op == 4:
        client.gql(
            "mutation($d: String!, $u: String!) { removeCollaborator(input: { dataset: $d, username: $u }) { dataset { id } } }",
            {"d": dataset, "u": target},
            token,
        )
    elif op in (5, 6):
        client.gql(
            "mutation($d: String!, $t: String!, $p: Boolean) { updateDataset(input: { dataset: $d, description: $t, public: $p }) { dataset { id } } }",
            {"d": dataset, "t": f"rev {counter}", "p": random.random() < 0.5},
            token,
        )
    else:
        client.gql(
            "mutation($d: String!) { deleteDataset(input: { dataset: $d }) { deletedDatasetId } }",
            {"d": dataset},
            token,
        )


def worker(index, instances, stats, world, deadline, mix):
    client = Client(instances, stats)
    counter = 0
    while time.monotonic() < deadline:
        counter += 1
        roll = random.random()
        if roll < mix[0]:
            query, variables = random.choice(READS)
            client.gql(query, variables(world), world.user()[1])
        elif roll < mix[0] + mix[1]:
            membership_change(client, world)
        elif roll < 0.995:
            dataset_change(client, world, index, counter)
        else:
            name, _ = world.user()
            client.gql(
                "mutation($u: String!, $p: String!) { logIn(input: { username: $u, password: $p }) { token } }",
                {"u": name, "p": PASSWORD},
            )


def percentile(sorted_values, p):
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, int(round(p / 100.0 * (len(sorted_values) - 1))))
    return sorted_values[k]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", required=True, help="comma-separated base URLs")
    parser.add_argument("--duration", type=float, default=180, help="seconds")
    parser.add_argument("--concurrency", type=int, default=12)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--orgs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    if args.seed is not None:
        random.seed(args.seed)
    instances = [Instance(u) for u in args.targets.split(",")]
    stats = Stats()
    world = World()
    tag = format(random.getrandbits(24), "x")
    started = time.monotonic()
    setup(Client(instances, stats), world, args.users, args.orgs, tag)
    print(
        f"setup: {len(world.tokens)} users, {len(world.orgs)} organizations, "
        f"{len(world.datasets)} datasets in {time.monotonic() - started:.1f}s",
        flush=True,
    )
    setup_requests = stats.requests

    deadline = time.monotonic() + args.duration
    mix = (0.6, 0.25)  # reads, membership changes; the rest dataset changes and log-ins
    threads = [
        threading.Thread(target=worker, args=(i, instances, stats, world, deadline, mix), daemon=True)
        for i in range(args.concurrency)
    ]
    load_started = time.monotonic()
    for t in threads:
        t.start()
    last = load_started
    while any(t.is_alive() for t in threads):
        time.sleep(1)
        if time.monotonic() - last >= 30:
            last = time.monotonic()
            with stats.lock:
                n = stats.requests
            print(f"  {last - load_started:5.0f}s: {n} requests", flush=True)
    for t in threads:
        t.join()
    elapsed = time.monotonic() - load_started

    latencies = sorted(stats.latencies)
    result = {
        "requests": stats.requests,
        "setup_requests": setup_requests,
        "seconds": round(elapsed, 1),
        "requests_per_second": round((stats.requests - setup_requests) / elapsed, 1),
        "per_instance": {str(k): v for k, v in sorted(stats.by_instance.items())},
        "errors_by_code": dict(sorted(stats.codes.items())),
        "http_5xx": stats.status_5xx,
        "transport_errors": stats.transport,
        "latency_ms": {
            "p50": round(percentile(latencies, 50) * 1000, 1),
            "p99": round(percentile(latencies, 99) * 1000, 1),
            "max": round((latencies[-1] if latencies else 0) * 1000, 1),
        },
    }
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
