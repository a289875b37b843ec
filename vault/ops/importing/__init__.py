"""``exvault import``: reading the keys other programs hold, planning and applying their
import into the vault.

One module per source reads it with the library made for its format and returns a
:class:`~vault.ops.importing.plan.Source`: :mod:`.freqtrade` (freqtrade's JSON
configuration files), :mod:`.dotenv_file` (``.env`` files, ccxt-style and freqtrade's
variables), :mod:`.hummingbot` (its encrypted connector files) and :mod:`.keepass`
(KeePass databases). :mod:`.plan` turns a source into a plan (names, exchanges, what
is skipped and why) against the vault's names, applies it in one transaction and
removes the source files on request. Each reader imports its library inside the
function that needs it: they are optional extras, and only ``exvault import`` loads
them.
"""
