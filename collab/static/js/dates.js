// Times shown in the page, written as the server writes them (collab/timezones.py): in the reader's time zone
// (their account's choice, else the site's), which the page names on <body data-time-zone>, never the zone the
// computer happens to be set to, and with the zone's abbreviation ("07 Mar 2025, 14:05 GMT"). So a post placed
// live reads the same as the one rendered with the page. <time datetime> keeps the UTC value for machines.
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const pad = (n) => String(n).padStart(2, "0");
const formats = new Map();

/** The reader's time zone, as the page names it (undefined: the browser's, for a page without one). */
export function timeZone() {
  return (document.body && document.body.dataset.timeZone) || undefined;
}

function formatter(zone) {
  const key = zone || "";
  if (!formats.has(key)) {
    const options = { year: "numeric", month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit",
      hourCycle: "h23", timeZoneName: "longOffset" };
    let f;
    try {
      f = new Intl.DateTimeFormat("en-GB", { ...options, timeZone: zone });
    } catch (e) {   // a zone this browser does not know: its own zone, still named by its offset
      f = new Intl.DateTimeFormat("en-GB", options);
    }
    formats.set(key, f);
  }
  return formats.get(key);
}

function offsetName(minutes) {
  if (minutes === 0) return "UTC";
  const a = Math.abs(minutes);
  return `UTC${minutes > 0 ? "+" : "-"}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

/** The parts of an ISO time in the reader's zone, with the zone's abbreviation (as the server names it). */
export function localParts(iso) {
  const zone = timeZone();
  const p = {};
  for (const part of formatter(zone).formatToParts(new Date(iso))) p[part.type] = part.value;
  const m = /GMT(?:([+-])(\d{1,2})(?::(\d{2}))?)?/.exec(p.timeZoneName || "GMT");
  const minutes = m && m[1] ? (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3] || 0)) : 0;
  let names = {};
  try { names = JSON.parse((document.body && document.body.dataset.timeZoneNames) || "{}"); } catch (e) { names = {}; }
  return {
    day: pad(Number(p.day)), month: MONTHS[Number(p.month) - 1], year: p.year,
    hour: pad(Number(p.hour) % 24), minute: pad(Number(p.minute)),
    zone: names[String(minutes)] || offsetName(minutes),
  };
}

/** "07 Mar 2025, 14:05 GMT" for an ISO time, in the reader's zone. */
export function dateTime(iso) {
  const p = localParts(iso);
  return `${p.day} ${p.month} ${p.year}, ${p.hour}:${p.minute} ${p.zone}`;
}

/** "14:05" for an ISO time, in the reader's zone ("14:05 GMT" with `named`); "" for none. */
export function clockTime(iso, named = false) {
  if (!iso) return "";
  const p = localParts(iso);
  return named ? `${p.hour}:${p.minute} ${p.zone}` : `${p.hour}:${p.minute}`;
}
