"""The verifier's rules, one module per kind: ``lexicon`` (word lists, ``stem``), ``analysis``
(what is compared, per text), then the checks: ``negation``, ``numbers``, ``entities``,
``scope``, ``content``. ``index.verifier`` runs them in order and adds the similarity-gated
content checks."""
