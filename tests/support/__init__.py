"""What the tests share (not test modules):

- `servers`: live uvicorn servers (`live_server_factory`, `confab_server`);
- `fakeopenai`: the OpenAI-compatible fake server and its `fake_openai` fixture;
- `rest`, `graphql`, `sockets`, `live_clients`: clients and helpers per surface;
- `turns`: waiting for turns, listening to groups, counting SQL (`QueryLog`);
- `routes`: every API route, for walks that must cover them all;
- `tokens`, `requirements` (needs_postgres / needs_redis), `sync`, `receivers`
  (push and webhook receivers), `tcp_proxy` (faults between Confab and its services).
"""
