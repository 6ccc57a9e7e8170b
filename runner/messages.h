#pragma once
// Messages between the coordinator (rank 0) and the workers (DESIGN.md section 3), serialized with
// Boost.Serialization binary archives into byte strings (every rank runs the same binary on the
// same kind of machine) and sent with MPI_Send of MPI_BYTE; the receiver probes for the size.
//
// Protocol (tags below):
//   worker -> coordinator  kTagWorker  WorkerMessage{Hello, host}        once, at start
//   worker -> coordinator  kTagWorker  WorkerMessage{Result, result}     after every task; also asks for the next
//   coordinator -> worker  kTagTask    TaskAssignment{spec, attempt}
//   coordinator -> worker  kTagStop    StopMessage{exit code}             no more work: the worker returns
#include <string>

#include "runner/task.h"

namespace pimqat::runner {

inline constexpr int kTagWorker = 11;
inline constexpr int kTagTask = 12;
inline constexpr int kTagStop = 13;

struct TaskAssignment {
  TaskSpec spec;
  int attempt = 1;
  std::uint64_t sweep_seed = 0;
};

struct WorkerMessage {
  enum class Type { Hello = 0, Result = 1 };
  Type type = Type::Hello;
  std::string host;
  TaskResult result;  // Type::Result
};

struct StopMessage {
  int exit_code = 0;
};

std::string serialize(const TaskAssignment& message);
std::string serialize(const WorkerMessage& message);
std::string serialize(const StopMessage& message);
// Throw pimqat::Error on malformed input.
TaskAssignment deserialize_assignment(const std::string& bytes);
WorkerMessage deserialize_worker_message(const std::string& bytes);
StopMessage deserialize_stop(const std::string& bytes);

}  // namespace pimqat::runner
