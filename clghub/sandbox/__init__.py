"""The sandbox: local emulators of Salesforce, HubSpot, Slack and a product
usage API, with a seeded dataset of a B2B SaaS company, served on one port.

It imports nothing of the rest of clghub: it is a server, and stays honest.

Entry points:

- ``server.SandboxServer(options)``: generate (or reuse) the data and serve
  it over HTTP and HTTPS on loopback, in a background thread;
- ``app.create_app(state)``: the ASGI application itself (``inprocess.
  InProcessTransport`` runs it without sockets);
- ``generator.generate(state)`` / ``generator.ensure_data(state)``: the data;
- ``config_out.write_config(path, endpoints)``: a clghub config pointing at
  a running sandbox;
- ``clghub sandbox serve`` and ``clghub sandbox usage-files`` on the
  command line.
"""
