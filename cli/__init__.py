"""The ``exvault`` command line: parse, prompt, format. All logic lives in :mod:`vault`."""
