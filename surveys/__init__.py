"""Survey campaigns, tracked links, QR codes and posters, reminder schedules and fan-out.

Arrives with the surveys issue (#4) and the reminders issue (#5).
"""
