"""The executor's plugins: the API every plugin implements (``api``), how plugins are found
(``registry``), how they run their tools (``process``), folder-per-backup retention
(``retention``, ``folders``) and the built-ins (``rsync``, ``restic``, ``postgres``,
``command``)."""
