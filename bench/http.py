#!/usr/bin/env python
"""HTTP benchmark of Collab (issue 2): `make bench`, or `.venv/bin/python bench/http.py --help`.

What it does
  1. Makes a fresh data folder and migrates it (tests/liveserver.py `make_server`).
  2. Seeds it: organisations, accounts, rooms and memberships through the real
     services; then threads, posts and their room events by bulk INSERTs into
     the schema the migrations made, computing exactly what the services would
     have written (materialised `path`, `depth`, thread counters and last post,
     `html` = rooms.markdown.render(body), one numbered `thread.created` /
     `post.created` room event per post with the same JSON payload). The seed
     is checked afterwards with SQL (paths, depths, counters, event sequence).
     A few attachments are added through the service to the 200-post thread.
     Default sizes: 2,000 threads, 100,000 posts; one thread of exactly 200
     posts with nested replies, all on its first page; a main room of 300
     threads and 40 members; the benchmark account is an ordinary member.
  3. Starts the production server, `flask --app wsgi serve` (gunicorn, one
     gevent worker), in its own process group.
  4. From this process (a separate process from the server) measures with
     aiohttp on one asyncio loop: the room page and the 200-post thread page
     (HTML, signed in through the real login form) and post creation over the
     JSON API (bearer token from `flask --app wsgi tokens create`), each at
     concurrency 1 and 16. One asyncio loop costs far less CPU per request than
     the server spends, so the client is not the bottleneck on 2 cores; the
     client's and the server's CPU use are measured and printed to show it.
  5. Prints a Markdown table and writes it into docs/benchmarks.md under
     "## HTTP (issue 2)" (that section only is replaced on a re-run).

Quick smoke run:  .venv/bin/python bench/http.py --threads 60 --posts 3000 --requests 40 --no-write
"""
from __future__ import annotations

import os
import sys

# This file is bench/http.py: run as a script, its folder comes first on sys.path and would hide the
# standard library's `http` package from everything imported below. Take that folder off the path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import asyncio
import io
import json
import platform
import random
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path



def _code_root() -> Path:
    """The tree whose code is seeded, served and measured: this checkout, or `--code-root DIR` (another git
    revision exported by bench/http_ab.py). Read before anything of Collab is imported."""
    for i, a in enumerate(sys.argv):
        if a == "--code-root" and i + 1 < len(sys.argv):
            return Path(sys.argv[i + 1]).resolve()
        if a.startswith("--code-root="):
            return Path(a.split("=", 1)[1]).resolve()
    return Path(__file__).resolve().parent.parent


ROOT = _code_root()
sys.path.insert(0, str(ROOT))

from tests.liveserver import make_server

SECTION = "## HTTP (issue 2)"
BENCH_EMAIL = "bench.user@bench.example.org"
BENCH_PASSWORD = "benchmark passphrase, not for production"
SPECIAL_POSTS = 200  # the thread page measured
SPECIAL_ROOTS = 24  # direct replies to its opening post: all fit on page 1 (25 per page)


# -- progress ------------------------------------------------------------------

class Progress:
    """One status line on a terminal, a line every tenth otherwise."""

    def __init__(self, label: str, total: int):
        self.label, self.total, self.done = label, max(total, 1), 0
        self.tty = sys.stderr.isatty()
        self.started = time.perf_counter()
        self._last_tenth = -1

    def add(self, n: int = 1) -> None:
        self.done += n
        tenth = self.done * 10 // self.total
        if self.tty:
            if self.done == self.total or self.done % max(1, self.total // 200) == 0:
                sys.stderr.write(f"\r  {self.label}: {self.done:,}/{self.total:,} ({100 * self.done // self.total}%)  ")
                sys.stderr.flush()
        elif tenth != self._last_tenth:
            self._last_tenth = tenth
            print(f"  {self.label}: {self.done:,}/{self.total:,}", file=sys.stderr, flush=True)

    def finish(self, note: str = "") -> None:
        took = time.perf_counter() - self.started
        if self.tty:
            sys.stderr.write("\n")
        print(f"  {self.label}: done in {took:.1f} s{(' ' + note) if note else ''}", file=sys.stderr, flush=True)


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- seed data -------------------------------------------------------------------

FIRST = ["Amira", "Ben", "Claire", "Daniel", "Ebony", "Fiona", "George", "Hannah", "Imran", "Jade", "Kwame", "Laura",
         "Mohammed", "Niamh", "Oliver", "Priya", "Rhys", "Sophie", "Tunde", "Uma", "Victor", "Wendy", "Yusuf", "Zara",
         "Aled", "Bethan", "Callum", "Deepa", "Emeka", "Freya", "Gareth", "Helen", "Isla", "Jamal", "Kirsty", "Liam"]
LAST = ["Patel", "Morgan", "Okafor", "Walsh", "Shah", "Hughes", "Price", "Ellis", "Bakare", "Clarke", "Evans",
        "Khan", "Murphy", "Nowak", "O'Brien", "Robinson", "Singh", "Taylor", "Wright", "Young", "Ahmed", "Baker",
        "Campbell", "Davies", "Edwards", "Fraser", "Green", "Hall", "Iqbal", "Jones", "Kelly", "Lewis"]
RANKS = ["Police Constable", "Sergeant", "Inspector", "Chief Inspector", "Superintendent", "PCSO",
         "Communications Officer", "Policy Officer", "Analyst", "Community Engagement Officer", None]
ORGS = [("Hampshire Constabulary", "force"), ("Thames Valley Police", "force"),
        ("Office of the Hampshire PCC", "pcc"), ("College of Policing", "national")]
TOPICS = ["Stop and search", "Body-worn video", "Hate crime reporting", "Custody suite visits", "Use of force",
          "Youth engagement", "Neighbourhood priorities", "Domestic abuse response", "Complaints data",
          "Recruitment and retention", "Community trigger", "Knife crime", "Mental health triage",
          "Road safety", "Rural crime", "Online safety", "Victim updates", "Drug harm", "Anti-social behaviour"]
ASPECTS = ["quarterly data", "draft policy: your comments", "agenda for the next meeting", "questions for the panel",
           "what went well", "lessons from last month", "terms of reference", "feedback from residents",
           "proposal for a pilot", "minutes and actions", "training materials", "scrutiny findings"]
SENTENCES = [
    "Thank you for sharing this early; it makes a real difference to how the group can help.",
    "The grounds-recording section reads well, but who reviews the recorded grounds, and how often?",
    "Supervisors dip-sample ten per cent each month and we could publish the results quarterly.",
    "Could the sample include every stop of under-18s, not only a random selection?",
    "From the frontline: switching cameras on early is already what most of us do.",
    "We tried a shared spreadsheet in 2023; it died because no one owned it.",
    "The panel would like to see the figures broken down by ward and by time of day.",
    "I will take this to the scrutiny meeting on Thursday and report back here.",
    "Residents at the Tuesday surgery raised parking near the school again.",
    "Publication of the minutes within a week is what made the panel credible.",
    "Can we agree a single contact for the community groups so messages do not get lost?",
    "The custody visit found the new cells clean, but the waiting area needs better signage.",
    "Is there a plain-English version we can share with young people?",
    "Good challenge: the policy should say cameras start recording before the encounter begins.",
    "We need the equality impact assessment before the Chief Officer Group sees this.",
]
MARKDOWN_BITS = [
    "**Action:** {name} to circulate the revised draft by Friday.",
    "Three points from our side:\n\n1. Timing of the data release\n2. Who signs off the summary\n3. How we follow up",
    "- ward-level figures\n- age bands\n- outcome of each stop",
    "See the [College guidance](https://www.college.police.uk/app) on this, section 4.",
    "> {quote}",
    "| Quarter | Stops | Arrests |\n|---|---|---|\n| Q1 | 412 | 61 |\n| Q2 | 388 | 57 |",
    "The code in the form is `SS-{n}`; please quote it when you reply.",
    "*Not for circulation outside this room.*",
]


def make_bodies(rng: random.Random, count: int) -> list[str]:
    bodies = []
    for _ in range(count):
        paras = []
        for _p in range(rng.choice([1, 1, 2, 2, 3])):
            paras.append(" ".join(rng.sample(SENTENCES, rng.randint(1, 3))))
        if rng.random() < 0.45:
            bit = rng.choice(MARKDOWN_BITS).format(name=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                                                   quote=rng.choice(SENTENCES), n=rng.randint(100, 999))
            paras.insert(rng.randrange(len(paras) + 1), bit)
        bodies.append("\n\n".join(paras))
    return bodies


def split_posts(rng: random.Random, n_threads: int, n_posts: int) -> list[int]:
    """Posts per thread (opening post included): at least 1 each, skewed like real forums, summing exactly."""
    if n_threads <= 0:
        return []
    mean = n_posts / n_threads
    sizes = [max(1, int(rng.lognormvariate(0, 0.9) * mean / 1.5)) for _ in range(n_threads)]
    total = sum(sizes)
    while total != n_posts:
        i = rng.randrange(n_threads)
        if total < n_posts:
            step = min(n_posts - total, max(1, int(mean)))
            sizes[i] += step
            total += step
        elif sizes[i] > 1:
            step = min(total - n_posts, sizes[i] - 1, max(1, int(mean)))
            sizes[i] -= step
            total -= step
    return sizes


def seed(server, args) -> dict:
    """Fill the server's (migrated, empty, not yet running) database. Returns what the measurement needs."""
    from sqlalchemy import func, select, text, update

    from auth import passwords
    from auth import services as accounts
    from auth.models import Organisation, User
    from collab import create_app, validate
    from collab.extensions import db
    from rooms import services as rooms
    from rooms import posts as room_posts
    from rooms.markdown import render
    from rooms.models import Membership, Post, Room, RoomEvent, Thread, path_segment
    from rooms.serialize import iso

    rng = random.Random(args.seed)
    data_dir = server.data_dir
    app = create_app({"DATA_DIR": str(data_dir), "DATABASE_URL": f"sqlite:///{data_dir / 'collab.db'}",
                      "SECRET_KEY": server.env["COLLAB_SECRET_KEY"], "PUBLIC_URL": server.url,
                      "SEARCH_INDEXING": False})  # the index is built once after the seed
    n_threads, n_posts = args.threads, args.posts
    if n_posts < n_threads + SPECIAL_POSTS - 1:
        raise SystemExit(f"--posts must be at least --threads + {SPECIAL_POSTS - 1} (one thread has {SPECIAL_POSTS}).")
    room_threads = min(args.room_threads, n_threads)

    with app.app_context():
        # ---- accounts, rooms and memberships: through the services ----
        prog = Progress("accounts, rooms, memberships (services)", args.users + args.rooms)
        orgs = []
        for name, kind in ORGS:
            db.begin_write()
            org = Organisation(name=name, kind=kind)
            db.session.add(org)
            db.session.commit()
            orgs.append(org)
        bench = accounts.create_user(email=BENCH_EMAIL, name="Bench Marker", password=BENCH_PASSWORD, kind="staff",
                                     role="member", organisation_id=orgs[0].id, job_title="Inspector")
        prog.add()
        # Every other account gets the same password; hashing it once (argon2id, production cost) rather
        # than per account only saves seeding time: each row is what create_user would have written.
        pw_hash = passwords.hash_password(BENCH_PASSWORD)
        db.begin_write()
        used = set()
        users = [bench]
        for i in range(args.users - 1):
            while True:
                first, last = rng.choice(FIRST), rng.choice(LAST)
                if (first, last) not in used or len(used) > len(FIRST) * len(LAST) // 2:
                    break
            used.add((first, last))
            kind = "iag" if rng.random() < 0.25 else "staff"
            u = User(email=f"{first}.{last}.{i}@bench.example.org".lower().replace("'", ""), name=f"{first} {last}",
                     password_hash=pw_hash, kind=kind, role="member", organisation_id=rng.choice(orgs).id,
                     job_title=rng.choice(RANKS) if kind == "staff" else None)
            db.session.add(u)
            users.append(u)
        db.session.commit()
        prog.add(args.users - 1)
        # Zipf-like activity: a few people write most posts.
        activity = {u.id: 1.0 / (rank + 2) for rank, u in enumerate(rng.sample(users, len(users)))}

        room_specs = []  # (room, [member ids that post])
        owner = users[1] if len(users) > 1 else bench
        main = rooms.create_room(owner, name="Hampshire IAG: stop and search scrutiny", visibility="private",
                                 description="Confidential scrutiny of stop and search by the Independent Advisory "
                                             "Group, with the force's leads.")
        others = [u for u in users if u.id not in (owner.id, bench.id)]
        members = rng.sample(others, min(len(others), args.room_members - 2))
        rooms.add_member(owner, main.id, user_id=bench.id, role="member")
        posting = [owner.id, bench.id]
        for j, u in enumerate(members):
            role = "moderator" if j < 2 else ("observer" if j % 10 == 9 else "member")
            rooms.add_member(owner, main.id, user_id=u.id, role=role)
            if role != "observer":
                posting.append(u.id)
        room_specs.append((main, posting))
        prog.add()
        for r in range(args.rooms - 1):
            topic = TOPICS[r % len(TOPICS)]
            vis = rng.choice(["private", "private", "organisation", "national"])
            own = rng.choice([u for u in users if u.kind == "staff"])  # staff open rooms; IAG members join them
            room = rooms.create_room(own, name=f"{topic} ({r + 1})", visibility=vis,
                                     description=f"Discussion of {topic.lower()} between staff and volunteers.")
            pool = [u for u in users if u.id != own.id]
            mem = rng.sample(pool, min(len(pool), rng.randint(5, 60)))
            if rng.random() < 0.3 and bench not in mem and bench.id != own.id:
                mem.append(bench)
            for u in mem:
                rooms.add_member(own, room.id, user_id=u.id, role="member")
            room_specs.append((room, [own.id] + [u.id for u in mem]))
            prog.add()
        prog.finish()
        names = {u.id: u.name for u in users}

        # ---- threads and posts: planned in memory ----
        bodies = make_bodies(rng, args.body_pool)
        bodies = [room_posts._body(b) for b in bodies]  # validated exactly as the services validate
        prog = Progress("rendering the body pool with rooms.markdown.render", len(bodies))
        htmls = []
        for b in bodies:
            htmls.append(render(b))
            prog.add()
        prog.finish()

        end = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=10)
        start = end - timedelta(days=args.history_days)
        sizes = split_posts(rng, n_threads - 1, n_posts - SPECIAL_POSTS)
        thread_room = [0] * room_threads + [1 + rng.randrange(max(1, len(room_specs) - 1)) if len(room_specs) > 1
                                             else 0 for _ in range(n_threads - room_threads)]
        special_idx = 0  # the first thread of the main room
        sizes.insert(special_idx, SPECIAL_POSTS)

        plans = []  # per thread: dict(room, start, posts=[(time, author, parent_local, body)])
        prog = Progress("planning threads and reply trees", n_threads)
        for ti in range(n_threads):
            room, posters = room_specs[thread_room[ti]]
            weights = [activity[a] for a in posters]
            size = sizes[ti]
            if ti == special_idx:
                t0 = end - timedelta(days=6)
                span = timedelta(days=6) - timedelta(minutes=5)
            else:
                t0 = start + (end - start) * rng.random()
                span = min(end - t0, timedelta(days=rng.uniform(0.5, 40)))
            times = sorted(t0 + span * rng.random() for _ in range(size - 1))
            depth = [0]
            parents = [None]
            if ti == special_idx:
                roots = {1} | set(rng.sample(range(2, size), SPECIAL_ROOTS - 1))
            for k in range(1, size):
                if (ti == special_idx and k in roots) or (ti != special_idx and (k == 1 or rng.random() < 0.45)):
                    parent = 0
                else:
                    # reply to a recent reply, more often than an old one
                    lo = max(1, k - 12)
                    cands = [c for c in range(lo, k) if depth[c] < 12]
                    parent = rng.choice(cands) if cands else 0
                parents.append(parent)
                depth.append(depth[parent] + 1)
            posts = [(t0, rng.choices(posters, weights)[0], None, rng.randrange(len(bodies)))]
            for k in range(1, size):
                posts.append((times[k - 1], rng.choices(posters, weights)[0], parents[k], rng.randrange(len(bodies))))
            plans.append({"room": room, "start": t0, "posts": posts,
                          "title": f"{rng.choice(TOPICS)}: {rng.choice(ASPECTS)}"})
            prog.add()
        prog.finish()

        # ids in the order things happened, as if the services had been called live
        thread_order = sorted(range(n_threads), key=lambda i: (plans[i]["start"], i))
        id_base_thread = (db.session.scalar(select(func.max(Thread.id))) or 0) + 1
        for new_id, ti in enumerate(thread_order, start=id_base_thread):
            plans[ti]["id"] = new_id
        order = sorted(((p[0], ti, k) for ti, pl in enumerate(plans) for k, p in enumerate(pl["posts"])))
        id_base_post = (db.session.scalar(select(func.max(Post.id))) or 0) + 1
        post_ids = [[0] * len(pl["posts"]) for pl in plans]
        for new_id, (_t, ti, k) in enumerate(order, start=id_base_post):
            post_ids[ti][k] = new_id

        seqs = {room.id: db.session.scalar(select(Room.last_seq).where(Room.id == room.id)) for room, _ in room_specs}
        # Notifications, when that feature is installed: what rooms.notifications writes in each post's
        # transaction (no seeded text mentions anyone, so: new threads and replies). Checked against its
        # own _plan() after the seed.
        try:
            from rooms.notifications import Notification
        except ImportError:
            Notification = None
        # Which rules this revision's code has: notifications._plan with the levels all/mentions/mute (before
        # issue 14's watch levels), or notify_delivery.plan with Discourse's levels and thread watches, and then
        # perhaps the levels taking part sets (the starter watches, a replier tracks: watching.follow_own_post).
        try:
            from rooms import notify_delivery, watching
            plan_of = notify_delivery.plan
            ThreadWatch = watching.ThreadWatch
            auto_watch = hasattr(watching, "follow_own_post")
        except ImportError:
            from rooms import notifications as _old_notifications
            plan_of = getattr(_old_notifications, "_plan", None)
            ThreadWatch, auto_watch = None, False
        watches: dict[tuple[int, int], str] = {}
        levels: dict[int, dict[int, str]] = {}
        if Notification is not None:
            for room_id, uid, level in db.session.execute(
                    select(Membership.room_id, Membership.user_id, Membership.notify_level)):
                levels.setdefault(room_id, {})[uid] = level
        author_of: dict[int, int] = {}
        path_of: dict[int, str] = {}
        depth_of: dict[int, int] = {}

        def post_payload(pid, tid, parent_id, depth, author, body_i, created):
            return {"id": pid, "thread_id": tid, "parent_id": parent_id, "depth": depth,
                    "author": {"id": author, "name": names[author]}, "body": bodies[body_i],
                    "html": htmls[body_i], "created_at": iso(created), "edited_at": None, "deleted": False,
                    "client_id": None, "attachments": []}

        # ---- bulk insert ----
        db.begin_write()
        conn = db.session.connection()
        thread_rows = []
        for ti in thread_order:
            pl = plans[ti]
            posts = pl["posts"]
            last = max(range(len(posts)), key=lambda k: post_ids[ti][k])
            thread_rows.append({"id": pl["id"], "room_id": pl["room"].id, "title": validate.text(
                pl["title"], "title", max_len=200), "author_id": posts[0][1], "created_at": pl["start"],
                "last_post_at": posts[last][0], "last_post_id": post_ids[ti][last], "post_count": len(posts)})
        conn.execute(Thread.__table__.insert(), thread_rows)
        titles = {r["id"]: r for r in thread_rows}

        prog = Progress("inserting posts, room events" + (", notifications" if Notification else ""), len(order))
        post_rows, event_rows, note_rows = [], [], []
        notes = 0

        def flush():
            nonlocal notes
            if post_rows:
                conn.execute(Post.__table__.insert(), post_rows)
                conn.execute(RoomEvent.__table__.insert(), event_rows)
                if note_rows:
                    conn.execute(Notification.__table__.insert(), note_rows)
                prog.add(len(post_rows))
                notes += len(note_rows)
                post_rows.clear()
                event_rows.clear()
                note_rows.clear()

        for t, ti, k in order:
            pl = plans[ti]
            pid, tid = post_ids[ti][k], pl["id"]
            _t, author, parent_k, body_i = pl["posts"][k]
            room_id = pl["room"].id
            if parent_k is None:
                parent_id, depth, path = None, 0, path_segment(pid)
            else:
                parent_id = post_ids[ti][parent_k]
                depth, path = depth_of[parent_id] + 1, f"{path_of[parent_id]}/{path_segment(pid)}"
            path_of[pid], depth_of[pid] = path, depth
            post_rows.append({"id": pid, "thread_id": tid, "parent_id": parent_id, "author_id": author,
                              "body": bodies[body_i], "html": htmls[body_i], "path": path, "depth": depth,
                              "client_id": None, "created_at": t, "edited_at": None, "deleted_at": None,
                              "deleted_by_id": None})
            seqs[room_id] += 1
            pd = post_payload(pid, tid, parent_id, depth, author, body_i, t)
            if parent_k is None:
                tr = titles[tid]
                payload = {"thread": {"id": tid, "title": tr["title"], "room_id": room_id,
                                      "author": {"id": author, "name": names[author]}, "created_at": iso(t),
                                      "last_post_at": iso(t), "post_count": 1}, "post": pd}
                name = "thread.created"
            else:
                payload, name = {"post": pd}, "post.created"
            body = dict(payload, room_id=room_id, seq=seqs[room_id])
            event_rows.append({"room_id": room_id, "seq": seqs[room_id], "name": name, "payload": json.dumps(body),
                               "created_at": t})
            author_of[pid] = author
            if Notification is not None:
                lv = levels.get(room_id, {})
                if ThreadWatch is None:  # the levels before issue 14
                    if parent_k is None:
                        told = {uid: "thread" for uid, level in lv.items() if level == "all"}
                    else:
                        pa = author_of[parent_id]
                        told = {pa: "reply"} if lv.get(pa, "all") == "all" else {}
                else:  # rooms/notify_delivery.py's rules (nobody is mentioned in the seeded texts)
                    if parent_k is None:
                        told = {uid: "thread" for uid, level in lv.items() if level in ("watching", "tracking")}
                    else:
                        pa = author_of[parent_id]
                        told = {}
                        for uid in {pa} | {u for u, level in lv.items() if level == "watching"} | {
                                u for (u, t2) in watches if t2 == tid}:
                            own = watches.get((uid, tid))
                            level = own if own and own != "normal" else (
                                lv.get(uid) if lv.get(uid) in ("watching", "muted") else "normal")
                            if level == "muted":
                                continue
                            if uid == pa:
                                told[uid] = "reply"
                            elif level == "watching":
                                told[uid] = "post"
                    if auto_watch:  # what follow_own_post writes for this post
                        if parent_k is None:
                            watches.setdefault((author, tid), "watching")
                        elif lv.get(author) not in ("watching", "muted"):
                            watches.setdefault((author, tid), "tracking")
                told.pop(author, None)
                note_rows.extend({"user_id": uid, "kind": kind, "room_id": room_id, "thread_id": tid, "post_id": pid,
                                  "actor_id": author, "created_at": t, "read_at": None, "emailed_at": None}
                                 for uid, kind in told.items())
            if len(post_rows) >= 5000:
                flush()
        flush()
        if watches:
            conn.execute(ThreadWatch.__table__.insert(), [
                {"user_id": uid, "thread_id": tid, "level": level, "updated_at": datetime.now(UTC).replace(tzinfo=None)}
                for (uid, tid), level in watches.items()])
        for room_id, seq in seqs.items():
            conn.execute(update(Room.__table__).where(Room.__table__.c.id == room_id).values(last_seq=seq))
        db.session.commit()
        prog.finish(f"({notes:,} notifications)" if Notification else "")

        # ---- a few attachments in the measured thread, through the service ----
        special_tid = plans[special_idx]["id"]
        for atts, k in enumerate(rng.sample(range(1, SPECIAL_POSTS), 6)):
            pid = post_ids[special_idx][k]
            author = db.session.get(User, plans[special_idx]["posts"][k][1])
            if atts % 2 == 0:
                from PIL import Image

                buf = io.BytesIO()
                Image.new("RGB", (320, 200), (rng.randrange(256), 90, 140)).save(buf, "PNG")
                buf.seek(0)
                upload = (f"chart-{k}.png", buf)
            else:
                upload = (f"minutes-{k}.txt", io.BytesIO(("Minutes\n" + bodies[k % len(bodies)]).encode()))
            with app.test_request_context("/", base_url=server.url):  # the event payload holds URLs
                room_posts.add_attachments(author, pid, [upload])

        # ---- check the seed is what the services would have made ----
        say("  checking the seed (paths, depths, counters, events)…")
        checks = {
            "posts": "SELECT count(*) FROM posts",
            "bad path/depth": "SELECT count(*) FROM posts c JOIN posts p ON p.id = c.parent_id "
                              "WHERE c.path != p.path || '/' || printf('%010d', c.id) OR c.depth != p.depth + 1 "
                              "OR c.thread_id != p.thread_id OR c.id <= p.id",
            "bad opening": "SELECT count(*) FROM posts WHERE parent_id IS NULL AND (path != printf('%010d', id) "
                           "OR depth != 0)",
            "bad counters": "SELECT count(*) FROM threads t WHERE post_count != (SELECT count(*) FROM posts p WHERE "
                            "p.thread_id = t.id) OR last_post_id != (SELECT max(id) FROM posts p WHERE "
                            "p.thread_id = t.id) OR 1 != (SELECT count(*) FROM posts p WHERE p.thread_id = t.id "
                            "AND p.parent_id IS NULL)",
            "bad seq": "SELECT count(*) FROM rooms r WHERE last_seq != (SELECT count(*) FROM room_events e WHERE "
                       "e.room_id = r.id) OR last_seq != (SELECT coalesce(max(seq), 0) FROM room_events e "
                       "WHERE e.room_id = r.id)",
        }
        found = {k: db.session.scalar(text(q)) for k, q in checks.items()}
        for k in ("bad path/depth", "bad opening", "bad counters", "bad seq"):
            if found[k]:
                raise SystemExit(f"seed check failed: {k}: {found[k]}")
        if found["posts"] != n_posts:
            raise SystemExit(f"seed check failed: {found['posts']} posts, expected {n_posts}")
        sample = db.session.execute(select(Post.body, Post.html).order_by(func.random()).limit(20)).all()
        if any(render(b) != h for b, h in sample):
            raise SystemExit("seed check failed: html is not render(body)")
        if Notification is not None and plan_of is not None:
            for post in db.session.scalars(select(Post).order_by(func.random()).limit(40)):
                want = plan_of(db.session, post, post.parent_id is None)
                have = dict(db.session.execute(select(Notification.user_id, Notification.kind)
                                               .where(Notification.post_id == post.id)).all())
                if want != have:
                    raise SystemExit(f"seed check failed: notifications of post {post.id}: {have} but the "
                                     f"service would write {want}")
        special = db.session.get(Thread, special_tid)
        roots = db.session.scalar(select(func.count(Post.id)).where(Post.thread_id == special_tid, Post.depth == 1))
        maxdepth = db.session.scalar(select(func.max(Post.depth)).where(Post.thread_id == special_tid))
        assert special.post_count == SPECIAL_POSTS and roots <= room_posts.ROOTS_PER_PAGE, (special.post_count, roots)
        main_threads = db.session.scalar(select(func.count(Thread.id)).where(Thread.room_id == main.id))
        main_members = db.session.scalar(select(func.count(Membership.id)).where(Membership.room_id == main.id))
        targets = [(pl["id"], post_ids[ti]) for ti, pl in enumerate(plans) if pl["room"].id == main.id and
                   ti != special_idx]
        info = {
            "room_id": main.id, "room_threads": main_threads, "room_members": main_members,
            "thread_id": special_tid, "thread_roots": roots, "thread_max_depth": maxdepth,
            "targets": targets[:200], "bodies": bodies[:50], "users": len(users), "rooms": len(room_specs),
            "threads": n_threads, "posts": n_posts,
        }
    db.session.remove()
    db.engine.dispose()
    return info


def rebuild_search_index(server) -> None:
    """The search index the services' outbox would have filled, made in one go (as `flask search rebuild`
    does after a restore), so the server does not start a rebuild in the middle of the measurement."""
    probe = server.flask("search", "--help", check=False)
    if probe.returncode != 0:
        say("  (no `flask search` command in this version: no search index to build)")
        return
    say("  building the search index: flask --app wsgi search rebuild")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "search", "rebuild"], cwd=ROOT, env=server.env,
                   check=True, timeout=3600)
    say(f"  search index: done in {time.perf_counter() - t0:.0f} s")


# -- measurement -------------------------------------------------------------------

def percentile(sorted_ms: list[float], p: float) -> float:
    if not sorted_ms:
        return float("nan")
    k = (len(sorted_ms) - 1) * p / 100
    f = int(k)
    c = min(f + 1, len(sorted_ms) - 1)
    return sorted_ms[f] + (sorted_ms[c] - sorted_ms[f]) * (k - f)


def proc_group_cpu(pgid: int) -> float:
    """CPU seconds used so far by every process in a process group (Linux /proc)."""
    return sum(proc_group_cpu_by_role(pgid).values())


ROLES = ("web worker", "search worker", "other")


def proc_group_cpu_by_role(pgid: int) -> dict[str, float]:
    """CPU seconds used so far by the processes of a process group, by role: the gunicorn worker (the one
    that serves requests), the `flask search worker` (indexing after a post), and the rest (supervisor,
    gunicorn master, media worker)."""
    tick = os.sysconf("SC_CLK_TCK")
    procs: dict[int, tuple[int, int, bytes]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 (pgrp) after pid and comm
            procs[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]), cmd)  # ppid, utime + stime
    out = dict.fromkeys(ROLES, 0.0)
    for _pid, (ppid, ticks, cmd) in procs.items():
        if b"gunicorn" in cmd and ppid in procs and b"gunicorn" in procs[ppid][2]:
            role = "web worker"
        elif b"search\0worker" in cmd:
            role = "search worker"
        else:
            role = "other"
        out[role] += ticks / tick
    return out


async def measure(name: str, conc: int, n: int, do_request, server_pgid: int) -> dict:
    import aiohttp

    latencies: list[float] = []
    errors: list[str] = []
    prog = Progress(f"{name} at concurrency {conc}", n)
    counter = iter(range(n))
    connector = aiohttp.TCPConnector(limit=conc, force_close=False)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async def worker():
            for i in counter:
                t0 = time.perf_counter()
                try:
                    err = await do_request(session, i)
                except Exception as exc:  # noqa: BLE001 - every failure is counted
                    err = f"{type(exc).__name__}: {exc}"
                dt = (time.perf_counter() - t0) * 1000
                if err:
                    errors.append(err)
                else:
                    latencies.append(dt)
                prog.add()

        cpu0, roles0, wall0 = time.process_time(), proc_group_cpu_by_role(server_pgid), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conc)))
        wall = time.perf_counter() - wall0
        roles1 = proc_group_cpu_by_role(server_pgid)
        by_role = {k: roles1[k] - roles0[k] for k in ROLES}
        cpu, srv = time.process_time() - cpu0, sum(by_role.values())
    prog.finish()
    lat = sorted(latencies)
    return {"name": name, "conc": conc, "n": n, "ok": len(lat), "errors": len(errors), "error_samples": errors[:3],
            "p50": percentile(lat, 50), "p95": percentile(lat, 95), "p99": percentile(lat, 99),
            "mean": sum(lat) / len(lat) if lat else float("nan"), "max": lat[-1] if lat else float("nan"),
            "rps": len(lat) / wall if wall else 0.0, "wall": wall,
            "client_cpu": 100 * cpu / wall if wall else 0.0, "server_cpu": 100 * srv / wall if wall else 0.0,
            "server_ms": 1000 * srv / len(lat) if lat else float("nan"),
            "server_ms_by_role": {k: 1000 * v / len(lat) if lat else float("nan") for k, v in by_role.items()}}


def gunicorn_worker(pgid: int) -> int | None:
    """The pid of the gunicorn worker in the server's process group (its parent is the gunicorn master)."""
    procs = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if int(fields[2]) == pgid and b"gunicorn" in cmd:
                procs[int(entry)] = int(fields[1])
    workers = [pid for pid, ppid in procs.items() if ppid in procs]
    return max(workers) if workers else None


class PySpy:
    """`--profile`: py-spy samples the gunicorn worker while one line of the table is measured."""

    def __init__(self, pgid: int, out: Path, fmt: str = "flamegraph"):
        exe = Path(sys.executable).with_name("py-spy")
        pid = gunicorn_worker(pgid)
        if not exe.exists() or pid is None:
            raise SystemExit("--profile needs py-spy (pip install -r requirements-dev.txt) and a running worker")
        self.out = out
        self.proc = subprocess.Popen([str(exe), "record", "--pid", str(pid), "--rate", "250", "--nonblocking",
                                      "--format", fmt, "--output", str(out)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # let it attach

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        say(f"  profile written to {self.out}")


async def login(base: str) -> str:
    """Sign in through the real form (CSRF token included); returns the session cookie's value."""
    import re

    import aiohttp

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.get(base + "/login") as r:
            page = await r.text()
        m = re.search(r'name="csrf_token" value="([^"]+)"', page)
        if not m:
            raise SystemExit("no CSRF token on the login page")
        async with s.post(base + "/login", data={"csrf_token": m.group(1), "email": BENCH_EMAIL,
                                                  "password": BENCH_PASSWORD}, allow_redirects=False) as r:
            if r.status != 302:
                raise SystemExit(f"login failed: HTTP {r.status}")
        for c in s.cookie_jar:
            if c.key == "session":
                return c.value
    raise SystemExit("login set no session cookie")


async def run_measurements(server, info: dict, token: str, args) -> list[dict]:
    base = server.url
    cookie = await login(base)
    html_headers = {"Cookie": f"session={cookie}", "Accept": "text/html"}
    api_headers = {"Authorization": f"Bearer {token}"}
    room_url = f"{base}/rooms/{info['room_id']}"
    thread_url = f"{base}/threads/{info['thread_id']}"
    rng = random.Random(args.seed + 1)
    targets, bodies = info["targets"], info["bodies"]

    async def get_room(session, _i):
        async with session.get(room_url, headers=html_headers, allow_redirects=False) as r:
            body = await r.read()
            if r.status != 200 or b'id="thread-list"' not in body:
                return f"room page: HTTP {r.status}"
        return None

    async def get_thread(session, _i):
        async with session.get(thread_url, headers=html_headers, allow_redirects=False) as r:
            await r.read()
            if r.status != 200:
                return f"thread page: HTTP {r.status}"
        return None

    async def create_post(session, _i):
        tid, pids = rng.choice(targets)
        data = {"body": rng.choice(bodies), "client_id": uuid.uuid4().hex}
        if rng.random() < 0.5:
            data["parent_id"] = rng.choice(pids)
        async with session.post(f"{base}/api/v1/threads/{tid}/posts", json=data, headers=api_headers) as r:
            body = await r.read()
            if r.status != 201:
                return f"post creation: HTTP {r.status} {body[:200]!r}"
        return None

    # warm up (templates compiled, connections made, read marker set) and check what is measured
    import aiohttp

    async with aiohttp.ClientSession() as s:
        async with s.get(thread_url, headers=html_headers, allow_redirects=False) as r:
            page = await r.text()
            if r.status != 200:
                raise SystemExit(f"thread page answered HTTP {r.status}")
        shown = page.count('data-post-id="')
        say(f"  the thread page shows {shown} posts")
        if shown < SPECIAL_POSTS:
            raise SystemExit(f"the thread page shows {shown} posts, not {SPECIAL_POSTS}")
        for _ in range(args.warmup):
            for fn in (get_room, get_thread, create_post):
                err = await fn(s, 0)
                if err:
                    raise SystemExit(f"warm-up failed: {err}")

    pgid = server.proc.pid
    results = []
    for key, label, fn in (("room", "Room page (HTML, 30 of its threads)", get_room),
                           ("thread", f"Thread page, {SPECIAL_POSTS} posts (HTML)", get_thread),
                           ("post", "Post creation (JSON API)", create_post)):
        if args.only and key not in args.only:
            continue
        for conc in (1, 16):
            spy = None
            if args.profile == f"{key}{conc}":
                ext = {"flamegraph": "svg", "raw": "txt", "speedscope": "json"}[args.profile_format]
                spy = PySpy(pgid, Path.cwd() / f"profile-{key}-c{conc}.{ext}", args.profile_format)
            try:
                results.append(await measure(label, conc, args.requests, fn, pgid))
            finally:
                if spy:
                    spy.stop()
    return results


# -- report ----------------------------------------------------------------------------

def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "unknown"
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    def ver(pkg):
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "?"

    return {"cpu": cpu, "cores": cores, "ram": ram, "os": platform.platform(), "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "gunicorn": ver("gunicorn"), "gevent": ver("gevent"),
            "aiohttp": ver("aiohttp")}


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=10, check=False)
        return out.stdout.strip() or "?"
    except Exception:  # noqa: BLE001
        return "?"


def report(results: list[dict], info: dict, mach: dict, load0, load1, args, server_errors: int) -> str:
    def r(name_start, conc):
        return next((x for x in results if x["name"].startswith(name_start) and x["conc"] == conc), None)

    thread1, post1, post16 = r("Thread page", 1), r("Post creation", 1), r("Post creation", 16)
    total_errors = sum(x["errors"] for x in results)

    def met(ok):
        return "**met**" if ok else "**not met**"

    lines = [
        SECTION,
        "",
        (f"Measured {datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')} at commit `{git_commit()}` by "
        f"`bench/http.py` (`make bench`)."),
        "",
        f"- Machine: {mach['cpu']}, {mach['cores']} cores, {mach['ram']} RAM, {mach['os']}",
        (f"- Python {mach['python']}, SQLite {mach['sqlite']} (the default database), gunicorn {mach['gunicorn']}, "
        f"gevent {mach['gevent']}"),
        ("- Server: `flask --app wsgi serve` = gunicorn, **one gevent worker** (`-k gevent --workers 1`), started by "
        "`tests/liveserver.py`, access log off"),
        (f"- Client: aiohttp {mach['aiohttp']} on one asyncio loop in a separate process (`bench/http.py`), "
        "keep-alive connections, one per concurrent client"),
        (f"- Data: {info['threads']:,} threads, {info['posts']:,} posts, {info['users']} accounts, {info['rooms']} "
        f"rooms. Room page: a private room of {info['room_threads']} threads and {info['room_members']} members, "
        f"signed in through the login form as an ordinary member. Thread page: {SPECIAL_POSTS} posts "
        f"({info['thread_roots']} direct replies, nested up to depth {info['thread_max_depth']}, 3 images and 3 "
        "files attached), all on its first page. Post creation: `POST /api/v1/threads/<id>/posts` with a bearer "
        "token, into the room's other threads, half of them replies to a reply."),
        (f"- {args.requests} measured requests per line after {args.warmup} warm-up rounds; latency is from "
        "sending the request to reading the whole response."),
        "",
        ("| Request | Concurrency | p50 ms | p95 ms | p99 ms | Requests/s | Errors | Server CPU | Server CPU ms "
        "per request | Client CPU |"),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for x in results:
        lines.append(f"| {x['name']} | {x['conc']} | {x['p50']:.1f} | {x['p95']:.1f} | {x['p99']:.1f} | "
                     f"{x['rps']:.0f} | {x['errors']} | {x['server_cpu']:.0f}% | {x['server_ms']:.1f} | "
                     f"{x['client_cpu']:.0f}% |")
    lines += [
        "",
        "Server CPU ms per request by process (web worker / search worker / the rest):",
        "",
    ]
    for x in results:
        b = x["server_ms_by_role"]
        lines.append(f"- {x['name']}, concurrency {x['conc']}: " + " / ".join(f"{b[k]:.1f}" for k in ROLES))
    lines += [
        "",
        "Targets (SQLite, 2 cores):",
        "",
    ]
    if thread1:
        lines.append(f"- Thread page of {SPECIAL_POSTS} posts, p95 at concurrency 1 under 60 ms: "
                     f"{thread1['p95']:.1f} ms, {met(thread1['p95'] < 60)}")
    if post1 and post16:
        lines += [
            (f"- Post creation p95 under 30 ms (at concurrency 1): {post1['p95']:.1f} ms, {met(post1['p95'] < 30)}. "
             f"At concurrency 16 the p95 is {post16['p95']:.1f} ms: one worker with one SQLite writer serves the "
             "16 clients in turn, so the latency there is about 16 / (requests per second)."),
            (f"- At least 150 post creations per second at concurrency 16 with no error: {post16['rps']:.0f}/s, "
             f"{post16['errors']} errors, {met(post16['rps'] >= 150 and post16['errors'] == 0)}"),
        ]
    if args.only:
        lines.append(f"- Only these lines were measured (`--only {' '.join(args.only)}`).")
    lines += [
        (f"- Errors over all {len(results) * args.requests} measured requests: {total_errors}; tracebacks in the "
        f"server log: {server_errors}"),
        "",
        ("Server CPU and client CPU are per cent of one core over each line's wall time (the server's process "
        "group: supervisor, gunicorn master and worker, search worker, the embedded media worker); server CPU ms per request is "
        "the server's CPU time divided by the requests answered, which includes work a request leaves behind "
        "(search indexing after a post), and is less sensitive than latency to other load on the machine."),
        (f"Load average (1, 5, 15 min) at the start: {load0[0]:.2f}, {load0[1]:.2f}, {load0[2]:.2f}; at the end: "
        f"{load1[0]:.2f}, {load1[1]:.2f}, {load1[2]:.2f}."),
    ]
    if args.profile:
        lines += ["", f"The line `{args.profile}` was recorded with py-spy (`--profile`), which slows it down."]
    if args.note:
        lines += ["", args.note]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace this benchmark's section of docs/benchmarks.md, keeping everything else."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\nMeasured figures of the scripts in `bench/`.\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == SECTION), None)
    if start is None:
        out = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
        rest = "".join(lines[end:])
        out = "".join(lines[:start]) + section + ("\n" + rest if rest else "")
    path.write_text(out)


# -- main ---------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description="Seed Collab, serve it with the production server and measure it over HTTP.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--threads", type=int, default=2000, help="threads to seed (default 2000)")
    ap.add_argument("--posts", type=int, default=100_000, help="posts to seed, opening posts included (100000)")
    ap.add_argument("--requests", type=int, default=500, help="measured requests per line of the table (500)")
    ap.add_argument("--warmup", type=int, default=10, help="warm-up rounds before measuring (10)")
    ap.add_argument("--users", type=int, default=200, help="accounts to seed (200)")
    ap.add_argument("--rooms", type=int, default=20, help="rooms to seed (20)")
    ap.add_argument("--room-threads", type=int, default=300, help="threads in the measured room (300)")
    ap.add_argument("--room-members", type=int, default=40, help="members of the measured room (40)")
    ap.add_argument("--history-days", type=int, default=730, help="days the seeded posts are spread over (730)")
    ap.add_argument("--body-pool", type=int, default=400, help="distinct post texts (400)")
    ap.add_argument("--seed", type=int, default=2, help="random seed (2)")
    ap.add_argument("--data-dir", type=Path, help="data folder to use (default: a new temporary one, deleted after)")
    ap.add_argument("--keep", action="store_true", help="keep the data folder afterwards")
    ap.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md", help="Markdown file to update")
    ap.add_argument("--no-write", action="store_true", help="print the table only; do not touch docs/")
    ap.add_argument("--note", default="", help="a sentence added under the table (e.g. 'the machine was shared')")
    ap.add_argument("--only", nargs="+", choices=("room", "thread", "post"),
                    help="measure only these lines (e.g. --only post); the default is all of them")
    ap.add_argument("--profile", choices=[f"{k}{c}" for k in ("room", "thread", "post") for c in (1, 16)],
                    help="record the server worker with py-spy during that line (e.g. post16) into "
                         "./profile-<line>.svg, a flame graph; the figures of that line are then slower")
    ap.add_argument("--profile-format", choices=("flamegraph", "raw", "speedscope"), default="flamegraph",
                    help="py-spy's output format for --profile: flamegraph (.svg, the default), raw (collapsed "
                         "stacks, .txt) or speedscope (.json)")
    # For bench/http_ab.py (two git revisions measured in one run): the code of another tree, a data folder
    # seeded once and measured several times, the figures as JSON.
    ap.add_argument("--code-root", type=Path, help="seed, serve and measure the code in this folder (default: "
                    "this checkout)")
    ap.add_argument("--prepare", type=Path, metavar="DIR", help="only seed DIR (new or empty) and build its search "
                    "index, for --reuse")
    ap.add_argument("--reuse", type=Path, metavar="DIR", help="measure a data folder made by --prepare (with the "
                    "same code) instead of seeding a new one")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the measured lines to FILE as JSON")
    args = ap.parse_args()
    if args.prepare:
        return prepare(args)

    load0 = os.getloadavg()
    mach = machine()
    say(f"Collab HTTP benchmark: {mach['cpu']}, {mach['cores']} cores; load average {load0[0]:.2f}")
    if args.reuse:
        info = json.loads((args.reuse / INFO_FILE).read_text())
        data_dir = args.reuse
        server = make_server(data_dir, migrate=False)
    else:
        if args.data_dir and args.data_dir.exists() and any(args.data_dir.iterdir()):
            raise SystemExit(f"{args.data_dir} is not empty: the benchmark seeds a fresh data folder.")
        data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="collab-bench-"))
        server = make_server(data_dir)  # migrates the empty database
    say(f"Data folder: {data_dir}")
    finished = False
    try:
        try:
            if not args.reuse:
                t0 = time.perf_counter()
                info = seed(server, args)
                say(f"Seeded in {time.perf_counter() - t0:.0f} s.")
                rebuild_search_index(server)
            out = server.flask("tokens", "create", "--email", BENCH_EMAIL, "--name", "bench", check=False)
            if out.returncode != 0:
                raise SystemExit(f"flask tokens create failed:\n{out.stdout}{out.stderr}")
            token = out.stdout.strip().splitlines()[-1]
            say("Starting the server: flask --app wsgi serve")
            server.start(timeout=60)
            results = asyncio.run(run_measurements(server, info, token, args))
        finally:
            server.stop()
        log = server.log_path.read_text(errors="replace") if server.log_path and server.log_path.exists() else ""
        server_errors = log.count("Traceback")
        load1 = os.getloadavg()
        section = report(results, info, mach, load0, load1, args, server_errors)
        print()
        print(section)
        if args.json:
            args.json.write_text(json.dumps({"results": results, "info": {k: v for k, v in info.items()
                                                                          if k not in ("targets", "bodies")},
                                             "load": [load0, load1], "server_errors": server_errors}, default=str))
        for x in results:
            for e in x["error_samples"]:
                say(f"  error sample ({x['name']}, c={x['conc']}): {e}")
        if not args.no_write:
            write_section(args.output, section)
            say(f"Written to {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output} "
                f"under '{SECTION}'.")
        finished = True
    finally:
        if not finished and server.log_path and server.log_path.exists():
            say("The run failed; the server log ends with:\n" + server.log_path.read_text(errors="replace")[-3000:])
        if not args.keep and not args.data_dir and not args.reuse:
            shutil.rmtree(data_dir, ignore_errors=True)
    if args.keep or args.data_dir:
        say(f"Data folder kept: {data_dir}")
    return 0


INFO_FILE = "bench-info.json"


def prepare(args) -> int:
    """--prepare DIR: seed DIR and build its search index; what the measurement needs goes to DIR/bench-info.json."""
    data_dir = args.prepare
    if data_dir.exists() and any(data_dir.iterdir()):
        raise SystemExit(f"{data_dir} is not empty: --prepare seeds a fresh data folder.")
    server = make_server(data_dir)
    t0 = time.perf_counter()
    info = seed(server, args)
    rebuild_search_index(server)
    (data_dir / INFO_FILE).write_text(json.dumps(info))
    say(f"Prepared {data_dir} in {time.perf_counter() - t0:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
