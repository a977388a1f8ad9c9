"""Survey campaigns, tracked links, staff enrolment (``campaigns``) and A4 posters (``poster``).

Reminder schedules and fan-out arrive with the reminders issue (#5).
"""
