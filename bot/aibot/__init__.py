"""The WeCom AI bot (智能机器人) in API mode over its long connection: no public URL needed.

`protocol` knows the frames and turns callbacks into the dispatcher's `Incoming`; `service` holds the
connection (one process at a time, by a lease in the database), answers callbacks through the same
dispatcher as the app's callback, and sends the outbox's "aibot" rows. See docs/aibot.md.
"""
