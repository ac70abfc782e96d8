"""WebRTC media worker (the meetings issue): its own asyncio process, never touching the database."""
