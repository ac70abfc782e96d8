"""`flask demo`: a small, realistic install so a new user sees a living site.

Two forces, a PCC office, a national body, an IAG of volunteers, rooms of every
visibility and threads with nested replies. Everything goes through the
services, exactly as if people had typed it.
"""
from __future__ import annotations

import io
import secrets

from sqlalchemy import func, select

from auth import services as accounts
from auth.models import Organisation
from collab.errors import Conflict
from collab.extensions import db
from rooms import services as rooms
from rooms import posts as room_posts
from rooms.models import Room

PEOPLE = [
    # key, name, email, kind, org key, job title, admin
    ("admin", "Sam Patel", "admin@demo.collab", "staff", "hants", "Digital Engagement Lead", True),
    ("supt", "Supt. Claire Morgan", "claire.morgan@demo.collab", "staff", "hants", "Superintendent", False),
    ("pc", "PC Daniel Okafor", "daniel.okafor@demo.collab", "staff", "hants", "Police Constable", False),
    ("sgt", "Sgt. Fiona Walsh", "fiona.walsh@demo.collab", "staff", "hants", "Sergeant", False),
    ("comms", "Priya Shah", "priya.shah@demo.collab", "staff", "tvp", "Communications Officer", False),
    ("pcc", "Martin Hughes", "martin.hughes@demo.collab", "staff", "pcc", "Policy Officer", False),
    ("college", "Dr Helen Price", "helen.price@demo.collab", "staff", "college", "Research Lead", False),
    ("iag1", "Margaret Ellis", "margaret.ellis@demo.collab", "iag", "hants", "IAG Chair", False),
    ("iag2", "Tunde Bakare", "tunde.bakare@demo.collab", "iag", "hants", None, False),
    ("iag3", "Rosemary Clarke", "rosemary.clarke@demo.collab", "iag", "hants", None, False),
]

ORGS = {
    "hants": ("Hampshire Constabulary", "force"),
    "tvp": ("Thames Valley Police", "force"),
    "pcc": ("Office of the Hampshire PCC", "pcc"),
    "college": ("College of Policing", "national"),
}


def _draft_policy() -> io.BytesIO:
    """A real Word document, so the demo shows an attachment (and search finds its text)."""
    from docx import Document  # only the demo's deck needs it: loaded when the demo is

    doc = Document()
    doc.add_heading("Stop and search policy (draft v0.3, for IAG consultation)", 1)
    for para in (
        "1. Grounds. Officers record the grounds for every search on the body-worn video and in the search record.",
        "2. Supervision. Supervisors dip-sample ten per cent of records each month and report themes quarterly.",
        "3. Body-worn video. Cameras are switched on before the encounter begins.",
        "4. Young people. Every search of a person under 18 is reviewed by a supervisor within seven days.",
    ):
        doc.add_paragraph(para)
    buf = io.BytesIO()
    doc.save(buf)
    buf.seek(0)
    return buf


def load(password: str | None = None) -> str:
    if db.session.scalar(select(func.count(Room.id))):
        raise Conflict("The demo can only be loaded into an install without rooms.")
    password = password or secrets.token_urlsafe(12)
    orgs = {}
    for key, (name, kind) in ORGS.items():
        org = db.session.scalar(select(Organisation).where(Organisation.name == name))
        if org is None:
            db.begin_write()
            org = Organisation(name=name, kind=kind)
            db.session.add(org)
            db.session.commit()
        orgs[key] = org
    people = {}
    for key, name, email, kind, org, title, admin in PEOPLE:
        existing = accounts.find_user_by_email(email)
        people[key] = existing or accounts.create_user(
            email=email, name=name, password=password, kind=kind, role="admin" if admin else "member",
            organisation_id=orgs[org].id, job_title=title)
    p = people

    iag = rooms.create_room(p["supt"], name="Hampshire IAG: stop and search",
                            description="Confidential scrutiny of stop and search by the Independent Advisory Group.",
                            visibility="private")
    for key in ("iag1", "iag2", "iag3", "sgt", "pc"):
        rooms.add_member(p["supt"], iag.id, user_id=p[key].id, role="member")
    rooms.add_member(p["supt"], iag.id, user_id=p["iag1"].id, role="moderator")

    t = room_posts.create_thread(p["supt"], iag.id, title="Draft stop and search policy: your comments",
                                 body="Attached is our **draft policy** for consultation. We would value frank "
                                      "comment before it goes to the Chief Officer Group.\n\n"
                                      "Questions we are asking:\n\n1. Is the grounds-recording section clear?\n"
                                      "2. Does body-worn video guidance go far enough?\n3. What would build trust "
                                      "with young people?",
                                 uploads=[("Draft stop and search policy v0.3.docx", _draft_policy())])
    a, _ = room_posts.create_post(p["iag1"], t.id, body="Thank you for sharing this early. The grounds section "
                                  "reads well, but *who reviews* the recorded grounds, and how often?")
    b, _ = room_posts.create_post(p["sgt"], t.id, parent_id=a.id, body="Supervisors dip-sample 10% each month. "
                                  "We could publish the results to the IAG quarterly.")
    c, _ = room_posts.create_post(p["iag2"], t.id, parent_id=b.id, body="Quarterly publication would help. Could "
                                  "the sample include every stop of under-18s?")
    room_posts.create_post(p["supt"], t.id, parent_id=c.id, body="That is a good challenge. I will take it to the "
                           "scrutiny panel and report back here.")
    d, _ = room_posts.create_post(p["iag3"], t.id, body="On body-worn video: the policy should say cameras are "
                                  "switched on **before** the encounter starts, not during.")
    room_posts.create_post(p["pc"], t.id, parent_id=d.id, body="From the frontline: agreed. Switching on early is "
                           "already what most of us do; writing it down protects officers too.")

    t2 = room_posts.create_thread(p["iag1"], iag.id, title="Agenda for the quarterly plenary",
                                  body="| Item | Lead | Time |\n|---|---|---|\n| Stop and search data | Supt. Morgan | 40 min |\n"
                                       "| Hate crime reporting | IAG | 30 min |\n| Key messages | Chair | 20 min |")
    room_posts.create_post(p["iag2"], t2.id, body="Could we add 15 minutes on the new custody suite?")

    ideas = rooms.create_room(p["pc"], name="Frontline ideas", visibility="organisation",
                              description="Any rank, any idea. Judged on merit, not rank.")
    t3 = room_posts.create_thread(p["pc"], ideas.id, title="Idea: shared rota for community meetings",
                                  body="Neighbourhood teams double-book community meetings. A shared rota in this room "
                                       "would let any officer pick one up.")
    e, _ = room_posts.create_post(p["sgt"], t3.id, body="Good idea. We tried a spreadsheet in 2023; it died because "
                                  "no one owned it.")
    room_posts.create_post(p["supt"], t3.id, parent_id=e.id, body="**You said, we did:** from next month the "
                           "neighbourhood inspector owns the rota. Thank you, Daniel.")

    national = rooms.create_room(p["college"], name="National: stop and search scrutiny", visibility="national",
                                 description="Forces, the College of Policing and PCC offices comparing notes.")
    t4 = room_posts.create_thread(p["college"], national.id, title="What does good community scrutiny look like?",
                                  body="We are collecting examples of scrutiny panels that changed practice. "
                                       "Please share what worked, and what did not.")
    f, _ = room_posts.create_post(p["pcc"], t4.id, body="Hampshire's panel publishes minutes within a week. "
                                  "Publication is what made it credible.")
    room_posts.create_post(p["comms"], t4.id, parent_id=f.id, body="Thames Valley is starting the same. Did you "
                           "redact names of panel members?")
    room_posts.create_thread(p["comms"], national.id, title="Live Q&A with the Chief Constable: questions",
                             body="Post your questions here before Thursday; vote up the ones you want answered.")

    tvp = rooms.create_room(p["comms"], name="Thames Valley communications", visibility="organisation",
                            description="Internal communications team.")
    room_posts.create_thread(p["comms"], tvp.id, title="Winter campaign plan", body="Draft plan to follow.")

    return (
        "Demo loaded: 4 organisations, 10 accounts, 4 rooms, 7 threads.\n"
        f"Every demo account has the password: {password}\n"
        "Sign in as admin@demo.collab (administrator), margaret.ellis@demo.collab (IAG chair) "
        "or daniel.okafor@demo.collab (frontline officer)."
    )
