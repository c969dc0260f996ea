"""An automated attacker that tries to learn about small groups from a built workbook.

* :mod:`.facts` reads everything a workbook publishes into tables and texts;
* :mod:`.truth` reads the service's extract, so the attacker knows which groups are small;
* :mod:`.attacks` runs the attacks and reports each finding with its file, place and reasoning;
* :mod:`.crafted` writes small extracts built to tempt a workbook into a disclosure.

Run it on any built workbook::

    python -m tests.attack workbooks/<service> --config <service.yml>

``test_attacker.py`` proves the attacker finds each kind of leak and nothing on a correctly
controlled publication; ``test_workbooks.py`` (part of ``make test``) builds every crafted
workbook and asserts the attacker finds nothing.
"""
