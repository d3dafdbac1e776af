// The GraphQL documents of the app (the schema is schema.graphql at the repo root).

export const CONVERSATION_FIELDS = `
fragment ConversationFields on Conversation {
  id title context model archived archivedAt lastMessageAt messageCount activeTurnId projectId pinned createdAt updatedAt
  agent { slug name }
  lastMessage { id role text status createdAt }
}`;

const MESSAGE_SELECTION = `
  id conversationId role text content status turnId clientMessageId model usage error createdAt updatedAt
  parentId siblings { ids index }
  attachments { id name contentType size width height url }`;

export const MESSAGE_FIELDS = `
fragment MessageFields on Message {${MESSAGE_SELECTION}
  feedback { rating comment }
}`;

// Live events carry no rating (it is the reader's own, read with the history): without
// the field, a message from an event keeps the rating the app holds (mergeMessage).
const LIVE_MESSAGE_FIELDS = `
fragment LiveMessageFields on Message {${MESSAGE_SELECTION}
}`;

export const ME = `query Me { me { id username } }`;

export const AGENTS = `query Agents {
  agents { slug name description contextVariables { name default description } }
}`;

export const CONVERSATIONS = `query Conversations($first: Int, $after: String, $archived: Boolean, $search: String, $project: String) {
  conversations(first: $first, after: $after, archived: $archived, search: $search, project: $project) {
    edges { cursor node { ...ConversationFields } }
    pageInfo { hasNextPage endCursor }
  }
}
${CONVERSATION_FIELDS}`;

export const CONVERSATION = `query Conversation($id: ID!) {
  conversation(id: $id) { ...ConversationFields }
}
${CONVERSATION_FIELDS}`;

export const MESSAGES = `query Messages($conversationId: ID!, $last: Int, $before: String) {
  messages(conversationId: $conversationId, last: $last, before: $before) {
    edges { cursor node { ...MessageFields } }
    pageInfo { hasPreviousPage startCursor }
  }
}
${MESSAGE_FIELDS}`;

export const CREATE_CONVERSATION = `mutation CreateConversation($agent: String!, $context: JSON, $title: String, $project: ID) {
  createConversation(agent: $agent, context: $context, title: $title, project: $project) {
    conversation { ...ConversationFields }
    errors { field code message }
  }
}
${CONVERSATION_FIELDS}`;

export const UPDATE_CONVERSATION = `mutation UpdateConversation($id: ID!, $title: String, $context: JSON) {
  updateConversation(id: $id, title: $title, context: $context) {
    conversation { ...ConversationFields }
    errors { field code message }
  }
}
${CONVERSATION_FIELDS}`;

export const MODELS = `query Models { models { name label provider supportsImages } }`;

export const SET_MODEL = `mutation SetModel($id: ID!, $model: String) {
  updateConversation(id: $id, model: $model) {
    conversation { ...ConversationFields }
    errors { field code message }
  }
}
${CONVERSATION_FIELDS}`;

export const PIN_CONVERSATION = `mutation PinConversation($id: ID!, $pinned: Boolean!) {
  updateConversation(id: $id, pinned: $pinned) {
    conversation { ...ConversationFields }
    errors { field code message }
  }
}
${CONVERSATION_FIELDS}`;

export const MOVE_CONVERSATION = `mutation MoveConversation($id: ID!, $project: ID) {
  updateConversation(id: $id, project: $project) {
    conversation { ...ConversationFields }
    errors { field code message }
  }
}
${CONVERSATION_FIELDS}`;

export const PROJECTS = `query Projects($first: Int, $after: String) {
  projects(first: $first, after: $after) { id name instructions defaultAgent }
}`;

export const CREATE_PROJECT = `mutation CreateProject($name: String!, $instructions: String, $defaultAgent: String) {
  createProject(name: $name, instructions: $instructions, defaultAgent: $defaultAgent) {
    project { id name instructions defaultAgent }
    errors { field code message }
  }
}`;

export const SEARCH_MESSAGES = `query SearchMessages($query: String!, $first: Int, $after: String) {
  search(query: $query, first: $first, after: $after) {
    results { conversation { id title } message { id createdAt } snippet }
    nextCursor hasMore
  }
}`;

export const SET_FEEDBACK = `mutation SetFeedback($conversationId: ID!, $messageId: ID!, $rating: FeedbackRating!, $comment: String) {
  setMessageFeedback(conversationId: $conversationId, messageId: $messageId, rating: $rating, comment: $comment) {
    message { ...MessageFields }
    errors { field code message }
  }
}
${MESSAGE_FIELDS}`;

export const CLEAR_FEEDBACK = `mutation ClearFeedback($conversationId: ID!, $messageId: ID!) {
  clearMessageFeedback(conversationId: $conversationId, messageId: $messageId) {
    message { ...MessageFields }
    errors { field code message }
  }
}
${MESSAGE_FIELDS}`;

export const ARCHIVE_CONVERSATION = `mutation ArchiveConversation($id: ID!, $archived: Boolean!) {
  archiveConversation(id: $id, archived: $archived) {
    conversation { ...ConversationFields }
    errors { field code message }
  }
}
${CONVERSATION_FIELDS}`;

export const DELETE_CONVERSATION = `mutation DeleteConversation($id: ID!) {
  deleteConversation(id: $id) { deletedId errors { field code message } }
}`;

export const CREATE_SHARE = `mutation CreateShare($id: ID!) {
  createShare(conversationId: $id) { share { id url upToMessageId } errors { field code message } }
}`;

export const CLEAR_CONVERSATION = `mutation ClearConversation($id: ID!) {
  clearConversation(id: $id) {
    conversation { ...ConversationFields }
    errors { field code message }
  }
}
${CONVERSATION_FIELDS}`;

export const SEND_MESSAGE = `mutation SendMessage($conversationId: ID!, $content: String, $clientMessageId: String, $attachments: [ID!]) {
  sendMessage(conversationId: $conversationId, content: $content, clientMessageId: $clientMessageId, attachments: $attachments) {
    humanMessage { ...MessageFields }
    aiMessage { ...MessageFields }
    errors { field code message }
  }
}
${MESSAGE_FIELDS}`;

export const CANCEL_TURN = `mutation CancelTurn($conversationId: ID!) {
  cancelTurn(conversationId: $conversationId) { turnId errors { field code message } }
}`;

export const REGENERATE = `mutation Regenerate($conversationId: ID!) {
  regenerate(conversationId: $conversationId) {
    aiMessage { ...MessageFields }
    errors { field code message }
  }
}
${MESSAGE_FIELDS}`;

export const EDIT_MESSAGE = `mutation EditMessage($conversationId: ID!, $messageId: ID!, $content: String!, $clientMessageId: String) {
  editMessage(conversationId: $conversationId, messageId: $messageId, content: $content, clientMessageId: $clientMessageId) {
    humanMessage { ...MessageFields }
    aiMessage { ...MessageFields }
    errors { field code message }
  }
}
${MESSAGE_FIELDS}`;

export const SWITCH_BRANCH = `mutation SwitchBranch($id: ID!, $messageId: ID!) {
  switchBranch(id: $id, messageId: $messageId) {
    conversation { ...ConversationFields }
    errors { field code message }
  }
}
${CONVERSATION_FIELDS}`;

export const CONVERSATION_EVENTS = `subscription ConversationEvents($conversationId: ID!) {
  conversationEvents(conversationId: $conversationId) {
    __typename
    ... on MessageCreated { message { ...LiveMessageFields } }
    ... on MessageDelta { conversationId messageId index offset delta }
    ... on MessageCompleted { message { ...LiveMessageFields } }
    ... on MessageFailed { message { ...LiveMessageFields } error { code message } }
    ... on MessageDeleted { conversationId messageIds }
    ... on ConversationBranchChanged { activeLeafId conversation { ...ConversationFields } }
    ... on ConversationUpdated { conversation { ...ConversationFields } }
    ... on ConversationCleared { conversation { ...ConversationFields } }
    ... on ConversationDeleted { conversation { id } }
    ... on ToolApprovalRequested { messageId calls { callId name arguments decision } }
    ... on ToolApprovalDecided { messageId call { callId decision decidedBy } }
  }
}
${LIVE_MESSAGE_FIELDS}
${CONVERSATION_FIELDS}`;

export const CONVERSATIONS_CHANGED = `subscription ConversationsChanged {
  conversationsChanged {
    __typename
    ... on ConversationCreated { conversation { ...ConversationFields } }
    ... on ConversationUpdated { conversation { ...ConversationFields } }
    ... on ConversationCleared { conversation { ...ConversationFields } }
    ... on ConversationDeleted { conversation { id } }
    ... on ToolApprovalRequested { conversationId calls { name } }
  }
}
${CONVERSATION_FIELDS}`;
